package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * int8 weights in symmetric blocks of {@value #BLOCK} along a row, this engine's Q8_0 (llama.cpp's
 * format, with an f32 rather than an f16 scale): the weight tensor, {@code [rows, cols]} signed
 * bytes, and its {@code <name>_scale_inv} companion, {@code [rows, ceil(cols / 32)]} f32, one
 * multiplier per block (the last block of a row covers what is left). The weight is
 * {@code w[r, c] = q[r, c] * scale[r, c / 32]}: the product of an integer of at most 8 bits and an
 * f32, rounded once. {@link Int8Quantizer} writes it (round to nearest of {@code w / scale} with
 * {@code scale = max|w| / 127} per block). {@link #byteSize} counts both tensors: 1.125 bytes per
 * weight.
 *
 * <p>Why the kernels widen the weights instead of quantizing the activation row to int8 and taking
 * integer dot products, as llama.cpp does: the Vector API has no instruction for int8 products
 * summed into int32 lanes (VNNI's {@code vpdpbusd}), so integer products would go through the same
 * widening to 32-bit lanes anyway and gain nothing, while an int8 activation adds a second
 * rounding error. Here a vector of bytes is widened to f32 lanes ({@code B2F}), multiplied by its
 * block's scale, and accumulated by FMA with the f32 activation, exactly as the dequantised weights
 * would be: decode is memory-bound, and these bytes are half of BF16's.
 *
 * <p>Row kernels as {@link Bf16Matrix} has them (four rows sharing each activation load, 2x4
 * register tiles from four tokens up, one accumulator per row and token in index order, lanes summed by {@link Kernels#sumLanes}, a scalar
 * tail), so a token's result is the same bits alone or in a batch. A vector never straddles two
 * blocks: the lane count (4, 8 or 16) divides 32. At 128 bits (no 32-bit byte vector shape), and
 * under {@link Kernels#SCALAR}, the plain loops run.
 */
public final class Int8Matrix extends WeightMatrix {
    /** Weights per block (and per scale), along a row. */
    public static final int BLOCK = 32;
    private static final int BLOCK_SHIFT = 5;
    /** Bytes of one f32 vector's worth of weights (64 or 128 bits), null where there is no such shape. */
    private static final VectorSpecies<Byte> B = Kernels.SCALAR || Kernels.F.vectorBitSize() < 256 ? null
            : VectorSpecies.of(byte.class, VectorShape.forBitSize(Kernels.F.vectorBitSize() / 4));

    private final MemorySegment scales;
    private final int blocksPerRow;
    private final boolean vectorized;

    /**
     * @param scales {@code [rows, ceil(cols / 32)]} f32 multipliers
     * @throws IllegalArgumentException naming the tensor when the sizes do not match
     */
    Int8Matrix(String name, MemorySegment data, int rows, int cols, MemorySegment scales) {
        super(name, data, rows, cols, (long) rows * cols);
        this.blocksPerRow = blocks(cols);
        if (scales.byteSize() != (long) rows * blocksPerRow * 4) {
            throw new IllegalArgumentException(name + ": " + scales.byteSize() + " bytes of F32 block scales, expected ["
                    + rows + ", " + blocksPerRow + "] for " + rows + "x" + cols + " in blocks of 1x" + BLOCK);
        }
        this.scales = scales;
        this.vectorized = B != null;
    }

    /** Blocks (and scales) per row of {@code cols} weights. */
    public static int blocks(int cols) {
        return (cols + BLOCK - 1) / BLOCK;
    }

    @Override
    public String format() {
        return "I8";
    }

    /** The f32 block scales, {@code [rows, ceil(cols / 32)]}. */
    public MemorySegment scales() {
        return scales;
    }

    /** Weight bytes and scale bytes: what a full pass reads. */
    @Override
    public long byteSize() {
        return data.byteSize() + scales.byteSize();
    }

    @Override
    public boolean isMapped() {
        return data.isMapped() && scales.isMapped();
    }

    /** Weight {@code (row, col)} as f32: the integer times its block's scale, rounded once. */
    float weight(int row, int col) {
        return data.get(ValueLayout.JAVA_BYTE, (long) row * cols + col) * scale(row, col);
    }

    private float scale(int row, int col) {
        return scales.getAtIndex(Kernels.F32, (long) row * blocksPerRow + (col >>> BLOCK_SHIFT));
    }

    /** {@link Kernels#LANES} weights from byte {@code index} widened to f32, unscaled. */
    private static FloatVector load(MemorySegment seg, long index) {
        return (FloatVector) ByteVector.fromMemorySegment(B, seg, index, Kernels.LE).convertShape(VectorOperators.B2F, Kernels.F, 0);
    }

    @Override
    public void copyRowTo(int row, MemorySegment out, long outIndex) {
        int c = 0;
        if (vectorized) {
            long base = (long) row * cols;
            long sRow = (long) row * blocksPerRow;
            int vecEnd = cols - cols % Kernels.LANES;
            for (; c < vecEnd; c += Kernels.LANES) {
                float s = scales.getAtIndex(Kernels.F32, sRow + (c >>> BLOCK_SHIFT));
                load(data, base + c).mul(s).intoMemorySegment(out, (outIndex + c) * 4, Kernels.LE);
            }
        }
        for (; c < cols; c++) {
            out.setAtIndex(Kernels.F32, outIndex + c, weight(row, c));
        }
    }

    @Override
    public void applyRows(MemorySegment x, int xRow, MemorySegment y, int yRow, int batch, int rowStart, int rowEnd) {
        final int cols = this.cols;
        final int outRows = rows;
        final long xBase = (long) xRow * cols;
        final long yBase = (long) yRow * outRows;
        if (!vectorized) {
            for (int r = rowStart; r < rowEnd; r++) {
                for (int b = 0; b < batch; b++) {
                    y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dotScalar(r, x, xBase + (long) b * cols));
                }
            }
            return;
        }
        int r = rowStart;
        for (; r + 4 <= rowEnd; r += 4) {
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                long xb = xBase + (long) b * cols;
                long yb = yBase + (long) b * outRows + r;
                tile2x4(r, x, xb, y, yb, outRows);
                tile2x4(r + 2, x, xb, y, yb + 2, outRows);
            }
            for (; b < batch; b++) {
                tile4x1(r, x, xBase + (long) b * cols, y, yBase + (long) b * outRows + r);
            }
        }
        for (; r < rowEnd; r++) {
            for (int b = 0; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(r, x, xBase + (long) b * cols));
            }
        }
    }

    /** Plain loop in index order over the dequantised weights: the scalar kernels. */
    private float dotScalar(int r, MemorySegment x, long xRow) {
        float sum = 0f;
        for (int k = 0; k < cols; k++) {
            sum += weight(r, k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    private float dot1(int r, MemorySegment x, long xRow) {
        final MemorySegment wd = data;
        final MemorySegment sc = scales;
        final int lanes = Kernels.LANES;
        final int cols = this.cols;
        final int vecEnd = cols - cols % lanes;
        final long wRow = (long) r * cols;
        final long sRow = (long) r * blocksPerRow;
        FloatVector a = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            float s = sc.getAtIndex(Kernels.F32, sRow + (k >>> BLOCK_SHIFT));
            a = load(wd, wRow + k).mul(s).fma(Kernels.loadF32(x, xRow + k), a);
        }
        float sum = Kernels.sumLanes(a);
        for (int k = vecEnd; k < cols; k++) {
            sum += weight(r, k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    /** One token, rows {@code [r, r + 4)}: each activation vector loaded once for the four rows. */
    private void tile4x1(int r, MemorySegment x, long xRow, MemorySegment y, long yIndex) {
        final MemorySegment wd = data;
        final MemorySegment sc = scales;
        final int lanes = Kernels.LANES;
        final int cols = this.cols;
        final int vecEnd = cols - cols % lanes;
        final int bpr = blocksPerRow;
        final long w0 = (long) r * cols;
        final long w1 = w0 + cols;
        final long w2 = w1 + cols;
        final long w3 = w2 + cols;
        final long s0Row = (long) r * bpr;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        FloatVector a2 = FloatVector.zero(Kernels.F);
        FloatVector a3 = FloatVector.zero(Kernels.F);
        for (int k = 0; k < vecEnd; k += lanes) {
            long si = s0Row + (k >>> BLOCK_SHIFT);
            FloatVector xv = Kernels.loadF32(x, xRow + k);
            a0 = load(wd, w0 + k).mul(sc.getAtIndex(Kernels.F32, si)).fma(xv, a0);
            a1 = load(wd, w1 + k).mul(sc.getAtIndex(Kernels.F32, si + bpr)).fma(xv, a1);
            a2 = load(wd, w2 + k).mul(sc.getAtIndex(Kernels.F32, si + 2L * bpr)).fma(xv, a2);
            a3 = load(wd, w3 + k).mul(sc.getAtIndex(Kernels.F32, si + 3L * bpr)).fma(xv, a3);
        }
        float s0 = Kernels.sumLanes(a0);
        float s1 = Kernels.sumLanes(a1);
        float s2 = Kernels.sumLanes(a2);
        float s3 = Kernels.sumLanes(a3);
        for (int k = vecEnd; k < cols; k++) {
            float xk = x.getAtIndex(Kernels.F32, xRow + k);
            s0 += weight(r, k) * xk;
            s1 += weight(r + 1, k) * xk;
            s2 += weight(r + 2, k) * xk;
            s3 += weight(r + 3, k) * xk;
        }
        Kernels.set4(y, yIndex, s0, s1, s2, s3);
    }

    /**
     * Rows {@code r} and {@code r + 1} times tokens {@code xRow + [0, 4) * cols}: each weight vector
     * decoded and scaled once for four tokens (as {@link Bf16Matrix}'s 2x4 tile, the largest that
     * stays within C2's node budget).
     */
    private void tile2x4(int r, MemorySegment x, long xRow, MemorySegment y, long yIndex, int yStride) {
        final MemorySegment wd = data;
        final MemorySegment sc = scales;
        final int lanes = Kernels.LANES;
        final int cols = this.cols;
        final int vecEnd = cols - cols % lanes;
        final int bpr = blocksPerRow;
        final long w0 = (long) r * cols;
        final long w1 = w0 + cols;
        final long s0Row = (long) r * bpr;
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
            long si = s0Row + (k >>> BLOCK_SHIFT);
            FloatVector v0 = load(wd, w0 + k).mul(sc.getAtIndex(Kernels.F32, si));
            FloatVector v1 = load(wd, w1 + k).mul(sc.getAtIndex(Kernels.F32, si + bpr));
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
        float s00 = Kernels.sumLanes(a00);
        float s10 = Kernels.sumLanes(a10);
        float s01 = Kernels.sumLanes(a01);
        float s11 = Kernels.sumLanes(a11);
        float s02 = Kernels.sumLanes(a02);
        float s12 = Kernels.sumLanes(a12);
        float s03 = Kernels.sumLanes(a03);
        float s13 = Kernels.sumLanes(a13);
        for (int k = vecEnd; k < cols; k++) {
            float u0 = weight(r, k);
            float u1 = weight(r + 1, k);
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
}
