package io.moecluster.core.backend;

import io.moecluster.core.model.FfnWeights;
import java.lang.foreign.MemorySegment;

/**
 * One SwiGLU FFN over a block of rows, {@code out_i = s_i * down(silu(gate(x_i)) * up(x_i))}: a
 * routed expert (scaled by its routing weight), the shared expert (by its gate) or a dense MLP
 * (unscaled). Scaling inside the kernel lets a device backend fuse it; the result is rounded once,
 * as {@code s * ffn(x)}, which is what the MoE combine sums.
 */
public interface FfnKernel extends AutoCloseable {
    /**
     * Called once for each weight set before its first {@link #run}, at start-up: a device backend
     * copies the weights to its memory here. The CPU backend reads the mapped checkpoint directly.
     */
    default void prepare(FfnWeights weights) {
    }

    /**
     * Rows {@code [xRow, xRow + rows)} of x in, rows {@code [outRow, outRow + rows)} of out written.
     *
     * @param scales one f32 per row from float index {@code scaleIndex}, or null for no scaling
     */
    void run(FfnWeights weights, MemorySegment x, int xRow, int rows, MemorySegment scales, long scaleIndex,
             MemorySegment out, int outRow);

    /**
     * Every entry of {@code batch}, each as {@link #run} would compute it: a device backend runs
     * them together (the experts of one layer in one grouped GEMM per projection). Entries write
     * disjoint output rows, so the order does not change a result; the default runs them one by
     * one, in order.
     */
    default void runBatch(FfnBatch batch) {
        for (int i = 0; i < batch.size(); i++) {
            run(batch.weights(i), batch.x(i), batch.xRow(i), batch.rows(i), batch.scales(i), batch.scaleIndex(i),
                    batch.out(i), batch.outRow(i));
        }
    }

    /** The most rows one {@link #run} (and one entry of {@link #runBatch}) takes. */
    int maxRows();

    @Override
    void close();
}
