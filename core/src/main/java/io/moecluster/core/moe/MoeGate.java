package io.moecluster.core.moe;

import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The MoE router's gate, as transformers computes it: gate logits, softmax over all experts in
 * f32, the top-k (ties go to the lower expert id), optionally renormalised to sum to one.
 */
public final class MoeGate {
    private final int numExperts;
    private final int topK;
    private final boolean renormalize;
    private final DenseMatMul matmul;
    private final MemorySegment logits;
    private final int[] ids;
    private final float[] w;
    private final boolean[] taken;

    public MoeGate(int numExperts, int topK, boolean renormalize, int maxTokens, DenseMatMul matmul, Arena arena) {
        this.numExperts = numExperts;
        this.topK = topK;
        this.renormalize = renormalize;
        this.matmul = matmul;
        this.logits = arena.allocate((long) maxTokens * numExperts * 4, 64);
        this.ids = new int[topK];
        this.w = new float[topK];
        this.taken = new boolean[numExperts];
    }

    public void route(WeightMatrix gate, MemorySegment input, int tokens, MoeRouting out) {
        matmul.apply(gate, input, logits, tokens);
        for (int t = 0; t < tokens; t++) {
            long base = (long) t * numExperts;
            Kernels.softmax(logits, base, numExperts);
            java.util.Arrays.fill(taken, false);
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
            out.set(t, ids, w);
        }
        out.group(tokens);
    }
}
