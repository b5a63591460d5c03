package io.moecluster.core.backend.cpu;

import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.MemorySegment;

/**
 * {@code y[b, r] = W[r, :] · x[b, :]} for a batch of activation rows: the Linear layer without bias.
 *
 * <p>Memory-bound at small batches, so each weight row is read once and applied to four tokens
 * while it is in L1. Each token uses its own pair of accumulators in the same order whether it is
 * computed alone or in a block of four: a token's output never depends on its batch-mates. The
 * row kernels belong to the weight's format ({@link WeightMatrix} and its variants); this class
 * splits the output rows over the pool.
 *
 * <p>An instance holds the arguments of the current call in fields so that it can be handed to
 * the {@link WorkerPool} without allocating; one instance per calling thread.
 */
public final class MatMul implements DenseMatMul, RangeTask {
    private final WorkerPool pool;
    private WeightMatrix w;
    private MemorySegment x;
    private MemorySegment y;
    private int xRow;
    private int yRow;
    private int batch;

    public MatMul(WorkerPool pool) {
        this.pool = pool;
    }

    @Override
    public void apply(WeightMatrix w, MemorySegment x, int xRow, MemorySegment y, int yRow, int batch) {
        this.w = w;
        this.x = x;
        this.y = y;
        this.xRow = xRow;
        this.yRow = yRow;
        this.batch = batch;
        // A grain of 16 rows keeps tiny matrices on one thread, where a split costs more than it saves.
        pool.parallelFor(w.rows(), 16, this);
        this.w = null;
        this.x = null;
        this.y = null;
    }

    @Override
    public void run(int worker, int start, int end) {
        rows(w, x, xRow, y, yRow, batch, start, end);
    }

    /**
     * The serial kernel over output rows {@code [rowStart, rowEnd)}: the weight's own row loop
     * ({@link WeightMatrix#applyRows}), one virtual call per range.
     */
    public static void rows(WeightMatrix w, MemorySegment x, int xRow, MemorySegment y, int yRow, int batch,
                            int rowStart, int rowEnd) {
        w.applyRows(x, xRow, y, yRow, batch, rowStart, rowEnd);
    }
}
