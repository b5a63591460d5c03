package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * bfloat16 weights (the upper half of an f32), 2 bytes each, little-endian, widened to f32 in
 * registers by {@link Kernels#loadBf16}.
 *
 * <p>Row kernels in blocks of four weight rows: at batch 1 the four rows share each activation load
 * (four independent FMA chains), from four tokens up 2x4 register tiles (two rows by four tokens)
 * reuse each widened weight vector for four tokens and each activation vector for two rows. Every
 * (row, token) pair keeps one accumulator over the row's whole vectors in index order, reduced by
 * {@link Kernels#sumLanes}, then a scalar tail: the same bits in every tile, so a token's result
 * does not depend on its batch-mates or on where a thread's range of rows starts.
 */
public final class Bf16Matrix extends WeightMatrix {
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
            Kernels.loadBf16(data, base + c).intoMemorySegment(out, (outIndex + c) * 4, Kernels.LE);
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
        // Four weight rows at a time: each activation vector is loaded once for the four rows, and
        // at batch >= 4 each block of four rows is applied to every token, four at a time, while
        // it is in cache (2x4 register tiles: eight accumulators, two weight vectors).
        int r = rowStart;
        for (; r + 4 <= rowEnd; r += 4) {
            long wRow = (long) r * cols;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                long xb = xBase + (long) b * cols;
                long yb = yBase + (long) b * outRows + r;
                tile2x4(wd, wRow, x, xb, cols, y, yb, outRows);
                tile2x4(wd, wRow + 2L * cols, x, xb, cols, y, yb + 2, outRows);
            }
            for (; b < batch; b++) {
                tile4x1(wd, wRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r);
            }
        }
        for (; r < rowEnd; r++) {
            long wRow = (long) r * cols;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                dot4(wd, wRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
            }
            for (; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(wd, wRow, x, xBase + (long) b * cols, cols));
            }
        }
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

    /*
     * The order every kernel below keeps for one (row, token) pair: one accumulator over the whole
     * vectors of [0, cols) in index order (acc = w[k..] * x[k..] + acc), its lanes summed by
     * Kernels.sumLanes, then the columns after the last whole vector added one by one. The tiles
     * differ only in how many pairs run side by side (independent chains: four or eight, enough to
     * hide the FMA latency), so a token's result is the same bits in every tile, alone or batched.
     * One chain is latency-bound only in dot1, which runs the rows left after the blocks of four.
     */

    private static float dot1(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols) {
        final int lanes = Kernels.LANES;
        final int vecEnd = cols - cols % lanes;
        FloatVector a = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            a = Kernels.loadBf16(wd, wRow + k).fma(Kernels.loadF32(x, xRow + k), a);
        }
        float sum = Kernels.sumLanes(a);
        for (int k = vecEnd; k < cols; k++) {
            sum += scalar(wd, wRow + k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    /** One token, rows {@code [r, r + 4)} (weights from {@code wRow}): each activation vector loaded once for all four. */
    private static void tile4x1(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols,
                                MemorySegment y, long yIndex) {
        final int lanes = Kernels.LANES;
        final int vecEnd = cols - cols % lanes;
        final long w0 = wRow;
        final long w1 = wRow + cols;
        final long w2 = wRow + 2L * cols;
        final long w3 = wRow + 3L * cols;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        FloatVector a2 = FloatVector.zero(Kernels.F);
        FloatVector a3 = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            FloatVector xv = Kernels.loadF32(x, xRow + k);
            a0 = Kernels.loadBf16(wd, w0 + k).fma(xv, a0);
            a1 = Kernels.loadBf16(wd, w1 + k).fma(xv, a1);
            a2 = Kernels.loadBf16(wd, w2 + k).fma(xv, a2);
            a3 = Kernels.loadBf16(wd, w3 + k).fma(xv, a3);
        }
        float s0 = Kernels.sumLanes(a0);
        float s1 = Kernels.sumLanes(a1);
        float s2 = Kernels.sumLanes(a2);
        float s3 = Kernels.sumLanes(a3);
        for (int k = vecEnd; k < cols; k++) {
            float xk = x.getAtIndex(Kernels.F32, xRow + k);
            s0 += scalar(wd, w0 + k) * xk;
            s1 += scalar(wd, w1 + k) * xk;
            s2 += scalar(wd, w2 + k) * xk;
            s3 += scalar(wd, w3 + k) * xk;
        }
        Kernels.set4(y, yIndex, s0, s1, s2, s3);
    }

    /**
     * Rows {@code r} and {@code r + 1} times tokens {@code xRow + [0, 4) * cols}: each weight vector
     * widened once for four tokens, each activation vector loaded once for both rows. Not larger:
     * a tile of four rows by two or four tokens exceeds C2's node budget for one compilation
     * (NodeCountInliningCutoff), which then leaves the last lane sums out of line and boxes their
     * accumulators (measured: a 4x4 tile 8x slower than this, with gigabytes of garbage).
     */
    private static void tile2x4(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols,
                                MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final int vecEnd = cols - cols % lanes;
        final long w1 = wRow + cols;
        final long x1 = xRow + cols;
        final long x2 = xRow + 2L * cols;
        final long x3 = xRow + 3L * cols;
        FloatVector a00 = FloatVector.zero(Kernels.F); // row 0, token 0
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a02 = FloatVector.zero(Kernels.F);
        FloatVector a03 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        FloatVector a12 = FloatVector.zero(Kernels.F);
        FloatVector a13 = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            FloatVector v0 = Kernels.loadBf16(wd, wRow + k);
            FloatVector v1 = Kernels.loadBf16(wd, w1 + k);
            FloatVector xv = Kernels.loadF32(x, xRow + k);
            a00 = v0.fma(xv, a00);
            a10 = v1.fma(xv, a10);
            xv = Kernels.loadF32(x, x1 + k);
            a01 = v0.fma(xv, a01);
            a11 = v1.fma(xv, a11);
            xv = Kernels.loadF32(x, x2 + k);
            a02 = v0.fma(xv, a02);
            a12 = v1.fma(xv, a12);
            xv = Kernels.loadF32(x, x3 + k);
            a03 = v0.fma(xv, a03);
            a13 = v1.fma(xv, a13);
        }
        // Finished here rather than in a helper taking the vectors: a call C2 does not inline
        // would box them.
        float s00 = Kernels.sumLanes(a00);
        float s10 = Kernels.sumLanes(a10);
        float s01 = Kernels.sumLanes(a01);
        float s11 = Kernels.sumLanes(a11);
        float s02 = Kernels.sumLanes(a02);
        float s12 = Kernels.sumLanes(a12);
        float s03 = Kernels.sumLanes(a03);
        float s13 = Kernels.sumLanes(a13);
        for (int k = vecEnd; k < cols; k++) {
            float u0 = scalar(wd, wRow + k);
            float u1 = scalar(wd, w1 + k);
            float x0k = x.getAtIndex(Kernels.F32, xRow + k);
            float x1k = x.getAtIndex(Kernels.F32, x1 + k);
            float x2k = x.getAtIndex(Kernels.F32, x2 + k);
            float x3k = x.getAtIndex(Kernels.F32, x3 + k);
            s00 += u0 * x0k;
            s10 += u1 * x0k;
            s01 += u0 * x1k;
            s11 += u1 * x1k;
            s02 += u0 * x2k;
            s12 += u1 * x2k;
            s03 += u0 * x3k;
            s13 += u1 * x3k;
        }
        y.setAtIndex(Kernels.F32, yIndex, s00);
        y.setAtIndex(Kernels.F32, yIndex + 1, s10);
        y.setAtIndex(Kernels.F32, yIndex + yStride, s01);
        y.setAtIndex(Kernels.F32, yIndex + yStride + 1, s11);
        y.setAtIndex(Kernels.F32, yIndex + 2L * yStride, s02);
        y.setAtIndex(Kernels.F32, yIndex + 2L * yStride + 1, s12);
        y.setAtIndex(Kernels.F32, yIndex + 3L * yStride, s03);
        y.setAtIndex(Kernels.F32, yIndex + 3L * yStride + 1, s13);
    }

    /** Tokens {@code xRow + [0, 4) * cols} of one row, each weight vector widened once for all four. */
    private static void dot4(MemorySegment wd, long wRow, MemorySegment x, long xRow, int cols,
                             MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final int vecEnd = cols - cols % lanes;
        final long x1 = xRow + cols;
        final long x2 = xRow + 2L * cols;
        final long x3 = xRow + 3L * cols;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        FloatVector a2 = FloatVector.zero(Kernels.F);
        FloatVector a3 = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            FloatVector w = Kernels.loadBf16(wd, wRow + k);
            a0 = w.fma(Kernels.loadF32(x, xRow + k), a0);
            a1 = w.fma(Kernels.loadF32(x, x1 + k), a1);
            a2 = w.fma(Kernels.loadF32(x, x2 + k), a2);
            a3 = w.fma(Kernels.loadF32(x, x3 + k), a3);
        }
        float s0 = Kernels.sumLanes(a0);
        float s1 = Kernels.sumLanes(a1);
        float s2 = Kernels.sumLanes(a2);
        float s3 = Kernels.sumLanes(a3);
        for (int k = vecEnd; k < cols; k++) {
            float wk = scalar(wd, wRow + k);
            s0 += wk * x.getAtIndex(Kernels.F32, xRow + k);
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
