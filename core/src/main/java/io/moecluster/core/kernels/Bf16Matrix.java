package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * bfloat16 weights (the upper half of an f32), 2 bytes each, little-endian, widened to f32 in
 * registers by {@link Kernels#loadBf16}.
 *
 * <p>Row kernels as {@link WeightMatrix} describes them: four tokens share each weight load, every
 * token keeps two accumulators in one fixed order, lanes reduced by {@link Kernels#sumLanes}. From
 * {@link #TILE_MIN_TOKENS} tokens on, pairs of rows go through {@link TwoRowF32Kernel}, which sums in
 * the same order.
 */
public final class Bf16Matrix extends WeightMatrix {
    /**
     * Tokens from which rows go in decoded pairs through {@link TwoRowF32Kernel}: at 5-7 tokens it
     * ran as fast as the one-row kernels (JMH {@code MatMulBenchmark} [2048, 1024], 0.95-1.03x),
     * at 9-11 in 0.92-0.93x the time; widening a bf16 costs one shift, so the pair's decode pays
     * late.
     */
    static final int TILE_MIN_TOKENS = 8;

    Bf16Matrix(String name, MemorySegment data, int rows, int cols) {
        super(name, data, rows, cols, (long) rows * cols * 2);
    }

    @Override
    public String format() {
        return "BF16";
    }

    @Override
    public void copyRowTo(int row, MemorySegment out, long outIndex) {
        long base = (long) row * cols;
        int c = 0;
        for (int bound = Kernels.SCALAR ? -1 : cols - Kernels.LANES; c <= bound; c += Kernels.LANES) {
            load(data, base + c).intoMemorySegment(out, (outIndex + c) * 4, Kernels.LE);
        }
        for (; c < cols; c++) {
            out.setAtIndex(Kernels.F32, outIndex + c, scalar(data, base + c));
        }
    }

    @Override
    public void applyRows(MemorySegment x, int xRow, MemorySegment y, int yRow, int batch, int rowStart, int rowEnd) {
        final MemorySegment wd = data;
        final int cols = this.cols;
        final int outRows = rows;
        final long xBase = (long) xRow * cols;
        final long yBase = (long) yRow * outRows;
        if (Kernels.SCALAR) {
            for (int r = rowStart; r < rowEnd; r++) {
                for (int b = 0; b < batch; b++) {
                    y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r,
                            dotScalar(wd, (long) r * cols, x, xBase + (long) b * cols, cols));
                }
            }
            return;
        }
        int r = rowStart;
        if (TwoRowF32Kernel.fits(batch, cols, TILE_MIN_TOKENS)) {
            // Two rows at a time: widened once to f32 in a per-thread buffer (exactly: a bf16 is
            // the top half of an f32), then applied to every token by the f32 two-row tiles, which
            // sum each (row, token) as dot1 does.
            KernelScratch scratch = KernelScratch.ofThisThread();
            MemorySegment decoded = scratch.decodedRows(2L * cols);
            MemorySegment sums = scratch.sums();
            for (; r + 2 <= rowEnd; r += 2) {
                TwoRowF32Kernel.applyRowPair(this, r, decoded, sums, x, xBase, batch, y, yBase);
            }
        }
        for (; r < rowEnd; r++) {
            long wRow = (long) r * cols;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                dot4(wd, wRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
            }
            if (b + 2 <= batch) { // an expert's few tokens: two share each weight load
                dot2(wd, wRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
                b += 2;
            }
            for (; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(wd, wRow, x, xBase + (long) b * cols, cols));
            }
        }
    }

    /** Weights {@code [index, index + LANES)} as f32 lanes. */
    private static FloatVector load(MemorySegment wd, long index) {
        return Kernels.loadBf16(wd, index);
    }

    /** Weight {@code index} as f32. */
    private static float scalar(MemorySegment wd, long index) {
        return Bf16.toFloat(wd.get(Kernels.BF16_RAW, index * 2));
    }

    /** Plain loop in index order: the whole row as the vector kernels' tail. */
    private static float dotScalar(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols) {
        float sum = 0f;
        for (int k = 0; k < cols; k++) {
            sum += scalar(wd, wRow + k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    private static float dot1(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols) {
        final int lanes = Kernels.LANES;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        int k = 0;
        for (int bound = cols - 2 * lanes; k <= bound; k += 2 * lanes) {
            a0 = load(wd, wRow + k).fma(Kernels.loadF32(x, xRow + k), a0);
            a1 = load(wd, wRow + k + lanes).fma(Kernels.loadF32(x, xRow + k + lanes), a1);
        }
        for (int bound = cols - lanes; k <= bound; k += lanes) {
            a0 = load(wd, wRow + k).fma(Kernels.loadF32(x, xRow + k), a0);
        }
        float sum = Kernels.sumLanes(a0.add(a1));
        for (; k < cols; k++) {
            sum += scalar(wd, wRow + k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    /**
     * Tokens {@code xRow} and {@code xRow + cols}, each weight vector loaded once for both, each
     * summed as {@link #dot1} sums it: the usual case of an expert at a small batch, which gets one
     * to three of the batch's tokens.
     */
    private static void dot2(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols,
                             MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final long x0 = xRow;
        final long x1 = xRow + cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        int k = 0;
        for (int bound = cols - 2 * lanes; k <= bound; k += 2 * lanes) {
            FloatVector w0 = load(wd, wRow + k);
            FloatVector w1 = load(wd, wRow + k + lanes);
            a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
            a01 = w1.fma(Kernels.loadF32(x, x0 + k + lanes), a01);
            a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
            a11 = w1.fma(Kernels.loadF32(x, x1 + k + lanes), a11);
        }
        for (int bound = cols - lanes; k <= bound; k += lanes) {
            FloatVector w0 = load(wd, wRow + k);
            a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
            a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
        }
        float s0 = Kernels.sumLanes(a00.add(a01));
        float s1 = Kernels.sumLanes(a10.add(a11));
        for (; k < cols; k++) {
            float wk = scalar(wd, wRow + k);
            s0 += wk * x.getAtIndex(Kernels.F32, x0 + k);
            s1 += wk * x.getAtIndex(Kernels.F32, x1 + k);
        }
        y.setAtIndex(Kernels.F32, yIndex, s0);
        y.setAtIndex(Kernels.F32, yIndex + yStride, s1);
    }

    /** Tokens {@code xRow + [0, 4) * cols}, each weight vector loaded once for all four. */
    private static void dot4(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols,
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
            FloatVector w0 = load(wd, wRow + k);
            FloatVector w1 = load(wd, wRow + k + lanes);
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
            FloatVector w0 = load(wd, wRow + k);
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
            float wk = scalar(wd, wRow + k);
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
