package io.moecluster.core.moe;

import io.moecluster.core.kernels.Kernels;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Mixtral's and Qwen2-MoE's expert choice, as transformers computes it: softmax over all experts
 * in f32, the top-k by probability (ties to the lower expert id), renormalised to sum to one when
 * {@code norm_topk_prob} (always for Mixtral).
 */
public final class SoftmaxTopK implements ExpertSelection {
    private final int numExperts;
    private final int topK;
    private final boolean renormalize;
    private final boolean[] taken;

    public SoftmaxTopK(int numExperts, int topK, boolean renormalize) {
        this.numExperts = numExperts;
        this.topK = topK;
        this.renormalize = renormalize;
        this.taken = new boolean[numExperts];
    }

    @Override
    public void select(int layer, MemorySegment logits, long base, int[] ids, float[] w) {
        Kernels.softmax(logits, base, numExperts);
        Arrays.fill(taken, false);
        float sum = 0f;
        for (int j = 0; j < topK; j++) {
            int best = -1;
            float bestP = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < numExperts; e++) {
                float p = Kernels.get(logits, base + e);
                if (!taken[e] && (best < 0 || p > bestP)) {
                    best = e;
                    bestP = p;
                }
            }
            taken[best] = true;
            ids[j] = best;
            w[j] = bestP;
            sum += bestP;
        }
        if (renormalize) {
            for (int j = 0; j < topK; j++) {
                w[j] /= sum;
            }
        }
    }
}
