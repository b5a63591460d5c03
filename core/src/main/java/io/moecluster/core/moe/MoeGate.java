package io.moecluster.core.moe;

import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The MoE router's gate: gate logits in f32 for every token of a step, each token's experts and
 * weights chosen by the model's {@link ExpertSelection} (softmax top-k, or DeepSeek-V3's
 * group-limited sigmoid), then the tokens grouped per expert ({@link MoeRouting}).
 */
public final class MoeGate {
    private final int numExperts;
    private final ExpertSelection selection;
    private final DenseMatMul matmul;
    private final MemorySegment logits;
    private final int[] ids;
    private final float[] w;

    public MoeGate(int numExperts, int topK, ExpertSelection selection, int maxTokens, DenseMatMul matmul, Arena arena) {
        this.numExperts = numExperts;
        this.selection = selection;
        this.matmul = matmul;
        this.logits = arena.allocate((long) maxTokens * numExperts * 4, 64);
        this.ids = new int[topK];
        this.w = new float[topK];
    }

    /** Softmax top-k, renormalised or not: Mixtral's and Qwen2-MoE's gate. */
    public MoeGate(int numExperts, int topK, boolean renormalize, int maxTokens, DenseMatMul matmul, Arena arena) {
        this(numExperts, topK, new SoftmaxTopK(numExperts, topK, renormalize), maxTokens, matmul, arena);
    }

    /** Routes with the gate of layer 0 (a selection without per-layer state). */
    public void route(WeightMatrix gate, MemorySegment input, int tokens, MoeRouting out) {
        route(0, gate, input, tokens, out);
    }

    /** Routes {@code tokens} rows of {@code input} through {@code gate}, layer {@code layer}'s. */
    public void route(int layer, WeightMatrix gate, MemorySegment input, int tokens, MoeRouting out) {
        matmul.apply(gate, input, logits, tokens);
        for (int t = 0; t < tokens; t++) {
            selection.select(layer, logits, (long) t * numExperts, ids, w);
            out.set(t, ids, w);
        }
        out.group(tokens);
    }
}
