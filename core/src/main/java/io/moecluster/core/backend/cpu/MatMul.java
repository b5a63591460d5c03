package io.moecluster.core.backend.cpu;

import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * {@code y[b, r] = W[r, :] · x[b, :]} for a batch of activation rows: the Linear layer without bias.
 *
 * <p>Memory-bound at small batches, so each weight row is read once and applied to four tokens
 * while it is in L1. Each token uses its own pair of accumulators in the same order whether it is
 * computed alone or in a block of four: a token's output never depends on its batch-mates.
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

    /** The serial kernel over output rows {@code [rowStart, rowEnd)}. */
    public static void rows(WeightMatrix w, MemorySegment x, int xRow, MemorySegment y, int yRow, int batch,
                            int rowStart, int rowEnd) {
        int cols = w.cols();
        long xBase = (long) xRow * cols;
        int outRows = w.rows();
        long yBase = (long) yRow * outRows;
        boolean bf16 = w.dtype() == DType.BF16;
        MemorySegment wd = w.data();
        for (int r = rowStart; r < rowEnd; r++) {
            long wRow = (long) r * cols;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                dot4(wd, bf16, wRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
            }
            for (; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(wd, bf16, wRow, x, xBase + (long) b * cols, cols));
            }
        }
    }

    private static FloatVector loadW(MemorySegment wd, boolean bf16, long index) {
        return bf16 ? Kernels.loadBf16(wd, index) : Kernels.loadF32(wd, index);
    }

    private static float scalarW(MemorySegment wd, boolean bf16, long index) {
        return bf16 ? Bf16.toFloat(wd.get(Kernels.BF16_RAW, index * 2)) : wd.getAtIndex(Kernels.F32, index);
    }

    static float dot1(MemorySegment wd, boolean bf16, long wRow, MemorySegment x, long xRow, int cols) {
        final int lanes = Kernels.LANES;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        int k = 0;
        for (int bound = cols - 2 * lanes; k <= bound; k += 2 * lanes) {
            a0 = loadW(wd, bf16, wRow + k).fma(Kernels.loadF32(x, xRow + k), a0);
            a1 = loadW(wd, bf16, wRow + k + lanes).fma(Kernels.loadF32(x, xRow + k + lanes), a1);
        }
        for (int bound = cols - lanes; k <= bound; k += lanes) {
            a0 = loadW(wd, bf16, wRow + k).fma(Kernels.loadF32(x, xRow + k), a0);
        }
        float sum = Kernels.sumLanes(a0.add(a1));
        for (; k < cols; k++) {
            sum += scalarW(wd, bf16, wRow + k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    private static void dot4(MemorySegment wd, boolean bf16, long wRow, MemorySegment x, long xRow, int cols,
                             MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final long x0 = xRow;
        final long x1 = xRow + cols;
        final long x2 = xRow + 2L * cols;
        final long x3 = xRow + 3L * cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        FloatVector a20 = FloatVector.zero(Kernels.F);
        FloatVector a21 = FloatVector.zero(Kernels.F);
        FloatVector a30 = FloatVector.zero(Kernels.F);
        FloatVector a31 = FloatVector.zero(Kernels.F);
        int k = 0;
        for (int bound = cols - 2 * lanes; k <= bound; k += 2 * lanes) {
            FloatVector w0 = loadW(wd, bf16, wRow + k);
            FloatVector w1 = loadW(wd, bf16, wRow + k + lanes);
            a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
            a01 = w1.fma(Kernels.loadF32(x, x0 + k + lanes), a01);
            a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
            a11 = w1.fma(Kernels.loadF32(x, x1 + k + lanes), a11);
            a20 = w0.fma(Kernels.loadF32(x, x2 + k), a20);
            a21 = w1.fma(Kernels.loadF32(x, x2 + k + lanes), a21);
            a30 = w0.fma(Kernels.loadF32(x, x3 + k), a30);
            a31 = w1.fma(Kernels.loadF32(x, x3 + k + lanes), a31);
        }
        for (int bound = cols - lanes; k <= bound; k += lanes) {
            FloatVector w0 = loadW(wd, bf16, wRow + k);
            a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
            a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
            a20 = w0.fma(Kernels.loadF32(x, x2 + k), a20);
            a30 = w0.fma(Kernels.loadF32(x, x3 + k), a30);
        }
        float s0 = Kernels.sumLanes(a00.add(a01));
        float s1 = Kernels.sumLanes(a10.add(a11));
        float s2 = Kernels.sumLanes(a20.add(a21));
        float s3 = Kernels.sumLanes(a30.add(a31));
        for (; k < cols; k++) {
            float wk = scalarW(wd, bf16, wRow + k);
            s0 += wk * x.getAtIndex(Kernels.F32, x0 + k);
            s1 += wk * x.getAtIndex(Kernels.F32, x1 + k);
            s2 += wk * x.getAtIndex(Kernels.F32, x2 + k);
            s3 += wk * x.getAtIndex(Kernels.F32, x3 + k);
        }
        y.setAtIndex(Kernels.F32, yIndex, s0);
        y.setAtIndex(Kernels.F32, yIndex + yStride, s1);
        y.setAtIndex(Kernels.F32, yIndex + 2L * yStride, s2);
        y.setAtIndex(Kernels.F32, yIndex + 3L * yStride, s3);
    }
}
