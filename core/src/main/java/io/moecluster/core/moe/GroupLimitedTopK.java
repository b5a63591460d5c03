package io.moecluster.core.moe;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.GroupLimitedRouting;
import java.lang.foreign.MemorySegment;

/**
 * DeepSeek-V3's expert choice ({@code scoring_func: sigmoid}, {@code topk_method: noaux_tc}), in
 * f32 as transformers computes it:
 * <ol>
 *   <li>scores {@code s_e = sigmoid(logit_e)}; for choosing only, {@code c_e = s_e + bias_e}
 *       ({@code e_score_correction_bias} of the layer);
 *   <li>the experts in {@code n_group} consecutive groups, each scored by the sum of its two
 *       largest {@code c_e}; the {@code topk_group} best groups kept;
 *   <li>the experts of the other groups get {@code c_e = 0} (transformers' {@code masked_fill(0.0)}),
 *       then the top-k of {@code c};
 *   <li>weights {@code s_e} of the chosen experts (without the bias), divided by their sum plus
 *       1e-20 when {@code norm_topk_prob}, then times {@code routed_scaling_factor} either way.
 * </ol>
 * Ties go to the lower group and the lower expert id.
 */
public final class GroupLimitedTopK implements ExpertSelection {
    private final int numExperts;
    private final int topK;
    private final int groups;
    private final int perGroup;
    private final int keepGroups;
    private final boolean renormalize;
    private final float scaling;
    private final MemorySegment[] bias;
    private final float[] score;
    private final float[] choice;
    private final float[] groupScore;
    private final boolean[] keep;
    private final boolean[] taken;

    /**
     * @param bias per layer, {@code numExperts} f32 ({@code e_score_correction_bias}); a null entry
     *     (or array) means no bias
     */
    public GroupLimitedTopK(int numExperts, int topK, GroupLimitedRouting routing, boolean renormalize,
                            MemorySegment[] bias) {
        if (numExperts % routing.nGroup() != 0 || numExperts / routing.nGroup() < 2
                || routing.topkGroup() > routing.nGroup() || topK > routing.topkGroup() * (numExperts / routing.nGroup())) {
            throw new IllegalArgumentException("cannot choose " + topK + " of " + numExperts + " experts with " + routing);
        }
        this.numExperts = numExperts;
        this.topK = topK;
        this.groups = routing.nGroup();
        this.perGroup = numExperts / groups;
        this.keepGroups = routing.topkGroup();
        this.renormalize = renormalize;
        this.scaling = (float) routing.routedScalingFactor();
        this.bias = bias;
        this.score = new float[numExperts];
        this.choice = new float[numExperts];
        this.groupScore = new float[groups];
        this.keep = new boolean[groups];
        this.taken = new boolean[numExperts];
    }

    @Override
    public void select(int layer, MemorySegment logits, long base, int[] ids, float[] w) {
        MemorySegment b = bias == null ? null : bias[layer];
        for (int e = 0; e < numExperts; e++) {
            float s = (float) (1.0 / (1.0 + Math.exp(-Kernels.get(logits, base + e))));
            score[e] = s;
            choice[e] = b == null ? s : s + Kernels.get(b, e);
        }
        for (int g = 0; g < groups; g++) {
            float first = Float.NEGATIVE_INFINITY;
            float second = Float.NEGATIVE_INFINITY;
            for (int e = g * perGroup; e < (g + 1) * perGroup; e++) {
                float c = choice[e];
                if (c > first) {
                    second = first;
                    first = c;
                } else if (c > second) {
                    second = c;
                }
            }
            groupScore[g] = first + second;
            keep[g] = false;
        }
        for (int j = 0; j < keepGroups; j++) {
            int best = -1;
            for (int g = 0; g < groups; g++) {
                if (!keep[g] && (best < 0 || groupScore[g] > groupScore[best])) {
                    best = g;
                }
            }
            keep[best] = true;
        }
        for (int e = 0; e < numExperts; e++) {
            if (!keep[e / perGroup]) {
                choice[e] = 0f;
            }
            taken[e] = false;
        }
        float sum = 0f;
        for (int j = 0; j < topK; j++) {
            int best = -1;
            for (int e = 0; e < numExperts; e++) {
                if (!taken[e] && (best < 0 || choice[e] > choice[best])) {
                    best = e;
                }
            }
            taken[best] = true;
            ids[j] = best;
            w[j] = score[best];
            sum += score[best];
        }
        if (renormalize) {
            float denominator = sum + 1e-20f;
            for (int j = 0; j < topK; j++) {
                w[j] /= denominator;
            }
        }
        for (int j = 0; j < topK; j++) {
            w[j] *= scaling;
        }
    }
}
