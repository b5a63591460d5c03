package io.moecluster.core.backend;

import io.moecluster.core.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * {@code y[b, :] = W · x[b, :]} for a batch of f32 activation rows: the Linear layer without bias
 * (attention projections, the LM head, MoE gates). One instance per calling thread.
 */
public interface DenseMatMul {
    /**
     * Rows {@code [xRow, xRow + batch)} of x ({@code [*, w.cols()]} f32) in, rows
     * {@code [yRow, yRow + batch)} of y ({@code [*, w.rows()]} f32) written.
     */
    void apply(WeightMatrix w, MemorySegment x, int xRow, MemorySegment y, int yRow, int batch);

    /** x {@code [batch, w.cols()]}, y {@code [batch, w.rows()]}, both from row 0. */
    default void apply(WeightMatrix w, MemorySegment x, MemorySegment y, int batch) {
        apply(w, x, 0, y, 0, batch);
    }
}
