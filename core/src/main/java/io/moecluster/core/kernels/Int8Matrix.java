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
 * <p>Row kernels as {@link Bf16Matrix} has them (one weight row at a time, four tokens sharing each
 * decoded weight vector, two accumulators per token over alternate vectors, lanes summed by
 * {@link Kernels#sumLanes}, a scalar tail; from {@link #TILE_MIN_TOKENS} tokens on, pairs of rows
 * decoded once into f32 and run through {@link TwoRowF32Kernel}), so a token's result is the same
 * bits alone or in a batch. A vector never straddles two blocks: the lane count (4, 8 or 16)
 * divides 32. At 128 bits (no 32-bit byte vector shape), and under {@link Kernels#SCALAR}, the
 * plain loops run.
 */
public final class Int8Matrix extends WeightMatrix {
    /** Weights per block (and per scale), along a row. */
    public static final int BLOCK = 32;
    private static final int BLOCK_SHIFT = 5;
    /**
     * Tokens from which rows go in decoded pairs through {@link TwoRowF32Kernel}: earlier than
     * BF16, since widening a byte, converting and scaling it, once per pass, costs more than a
     * bf16's shift (JMH {@code MatMulBenchmark} [2048, 1024]: 0.82-0.93x the one-row kernels'
     * time at 5-7 tokens).
     */
    static final int TILE_MIN_TOKENS = 5;
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
        final MemorySegment wd = data;
        final MemorySegment sd = scales;
        int r = rowStart;
        if (TwoRowF32Kernel.fits(batch, cols, TILE_MIN_TOKENS)) {
            // Two rows at a time: decoded once to f32 in a per-thread buffer (the products dot1
            // forms, so the same bits), then applied to every token by the f32 two-row tiles.
            KernelScratch scratch = KernelScratch.ofThisThread();
            MemorySegment decoded = scratch.decodedRows(2L * cols);
            MemorySegment sums = scratch.sums();
            for (; r + 2 <= rowEnd; r += 2) {
                TwoRowF32Kernel.applyRowPair(this, r, decoded, sums, x, xBase, batch, y, yBase);
            }
        }
        for (; r < rowEnd; r++) {
            long wRow = (long) r * cols;
            long sRow = (long) r * blocksPerRow;
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                dot4(wd, wRow, sd, sRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
            }
            if (b + 2 <= batch) { // an expert's few tokens: two share each widened weight vector
                dot2(wd, wRow, sd, sRow, x, xBase + (long) b * cols, cols, y, yBase + (long) b * outRows + r, outRows);
                b += 2;
            }
            for (; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(wd, wRow, sd, sRow, x, xBase + (long) b * cols, cols));
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

    /** Scale {@code index} of {@code sd} in every lane. */
    private static FloatVector scaleAt(MemorySegment sd, long index) {
        return FloatVector.broadcast(Kernels.F, sd.getAtIndex(Kernels.F32, index));
    }

    /** Weight {@code k} of the row at {@code wRow} (scales at {@code sRow}) as f32. */
    private static float weight(MemorySegment wd, long wRow, MemorySegment sd, long sRow, int k) {
        return wd.get(ValueLayout.JAVA_BYTE, wRow + k) * sd.getAtIndex(Kernels.F32, sRow + (k >>> BLOCK_SHIFT));
    }

    /**
     * One token's dot product with the row at {@code wRow} (its scales at {@code sRow}): each
     * vector of weights widened and multiplied by its block's scale, then accumulated by FMA,
     * vectors alternating between two accumulators; the columns past the last whole vector in
     * index order.
     *
     * <p>The loops count blocks, not columns: every address is then a linear function of the one
     * induction variable and C2 moves the bounds checks of the weight, scale and activation loads
     * out of the loop. Counting columns and reading the scale at {@code k >>> 5} kept a check per
     * load in the loop (some 60 instructions per 64 weights, 12 of them vector operations), which
     * made this kernel slower than BF16's at half the bytes.
     */
    private static float dot1(MemorySegment wd, long wRow, MemorySegment sd, long sRow, MemorySegment x, long xRow,
                              int cols) {
        final int lanes = Kernels.LANES;
        final int wholeBlocks = cols / BLOCK;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        for (int blk = 0; blk < wholeBlocks; blk++) {
            long k = (long) blk << BLOCK_SHIFT;
            FloatVector s = scaleAt(sd, sRow + blk);
            // BLOCK / LANES vectors (2 or 4): an even count, so vector i of the row goes to a(i % 2).
            for (int j = 0; j < BLOCK; j += 2 * lanes) {
                a0 = load(wd, wRow + k + j).mul(s).fma(Kernels.loadF32(x, xRow + k + j), a0);
                a1 = load(wd, wRow + k + j + lanes).mul(s).fma(Kernels.loadF32(x, xRow + k + j + lanes), a1);
            }
        }
        int k = wholeBlocks * BLOCK;
        if (k + lanes <= cols) { // whole vectors of a last, partial block
            FloatVector s = scaleAt(sd, sRow + wholeBlocks);
            for (; k + 2 * lanes <= cols; k += 2 * lanes) {
                a0 = load(wd, wRow + k).mul(s).fma(Kernels.loadF32(x, xRow + k), a0);
                a1 = load(wd, wRow + k + lanes).mul(s).fma(Kernels.loadF32(x, xRow + k + lanes), a1);
            }
            if (k + lanes <= cols) {
                a0 = load(wd, wRow + k).mul(s).fma(Kernels.loadF32(x, xRow + k), a0);
                k += lanes;
            }
        }
        float sum = Kernels.sumLanes(a0.add(a1));
        for (; k < cols; k++) {
            sum += weight(wd, wRow, sd, sRow, k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    /**
     * Tokens {@code xRow} and {@code xRow + cols}: each weight vector widened and scaled once for
     * both, each summed exactly as {@link #dot1} sums it (an expert's one to three tokens at a
     * small batch).
     */
    private static void dot2(MemorySegment wd, long wRow, MemorySegment sd, long sRow, MemorySegment x, long xRow,
                             int cols, MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final int wholeBlocks = cols / BLOCK;
        final long x0 = xRow;
        final long x1 = xRow + cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        for (int blk = 0; blk < wholeBlocks; blk++) {
            long k = (long) blk << BLOCK_SHIFT;
            FloatVector s = scaleAt(sd, sRow + blk);
            for (int j = 0; j < BLOCK; j += 2 * lanes) {
                long c = k + j;
                FloatVector w0 = load(wd, wRow + c).mul(s);
                FloatVector w1 = load(wd, wRow + c + lanes).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + c), a00);
                a01 = w1.fma(Kernels.loadF32(x, x0 + c + lanes), a01);
                a10 = w0.fma(Kernels.loadF32(x, x1 + c), a10);
                a11 = w1.fma(Kernels.loadF32(x, x1 + c + lanes), a11);
            }
        }
        int k = wholeBlocks * BLOCK;
        if (k + lanes <= cols) {
            FloatVector s = scaleAt(sd, sRow + wholeBlocks);
            for (; k + 2 * lanes <= cols; k += 2 * lanes) {
                FloatVector w0 = load(wd, wRow + k).mul(s);
                FloatVector w1 = load(wd, wRow + k + lanes).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
                a01 = w1.fma(Kernels.loadF32(x, x0 + k + lanes), a01);
                a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
                a11 = w1.fma(Kernels.loadF32(x, x1 + k + lanes), a11);
            }
            if (k + lanes <= cols) {
                FloatVector w0 = load(wd, wRow + k).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
                a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
                k += lanes;
            }
        }
        float s0 = Kernels.sumLanes(a00.add(a01));
        float s1 = Kernels.sumLanes(a10.add(a11));
        for (; k < cols; k++) {
            float wk = weight(wd, wRow, sd, sRow, k);
            s0 += wk * x.getAtIndex(Kernels.F32, x0 + k);
            s1 += wk * x.getAtIndex(Kernels.F32, x1 + k);
        }
        y.setAtIndex(Kernels.F32, yIndex, s0);
        y.setAtIndex(Kernels.F32, yIndex + yStride, s1);
    }

    /**
     * Tokens {@code xRow + [0, 4) * cols}: each weight vector widened and scaled once for all
     * four, each token summed exactly as {@link #dot1} sums it.
     */
    private static void dot4(MemorySegment wd, long wRow, MemorySegment sd, long sRow, MemorySegment x, long xRow,
                             int cols, MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final int wholeBlocks = cols / BLOCK;
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
        for (int blk = 0; blk < wholeBlocks; blk++) {
            long k = (long) blk << BLOCK_SHIFT;
            FloatVector s = scaleAt(sd, sRow + blk);
            for (int j = 0; j < BLOCK; j += 2 * lanes) {
                long c = k + j;
                FloatVector w0 = load(wd, wRow + c).mul(s);
                FloatVector w1 = load(wd, wRow + c + lanes).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + c), a00);
                a01 = w1.fma(Kernels.loadF32(x, x0 + c + lanes), a01);
                a10 = w0.fma(Kernels.loadF32(x, x1 + c), a10);
                a11 = w1.fma(Kernels.loadF32(x, x1 + c + lanes), a11);
                a20 = w0.fma(Kernels.loadF32(x, x2 + c), a20);
                a21 = w1.fma(Kernels.loadF32(x, x2 + c + lanes), a21);
                a30 = w0.fma(Kernels.loadF32(x, x3 + c), a30);
                a31 = w1.fma(Kernels.loadF32(x, x3 + c + lanes), a31);
            }
        }
        int k = wholeBlocks * BLOCK;
        if (k + lanes <= cols) {
            FloatVector s = scaleAt(sd, sRow + wholeBlocks);
            for (; k + 2 * lanes <= cols; k += 2 * lanes) {
                FloatVector w0 = load(wd, wRow + k).mul(s);
                FloatVector w1 = load(wd, wRow + k + lanes).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
                a01 = w1.fma(Kernels.loadF32(x, x0 + k + lanes), a01);
                a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
                a11 = w1.fma(Kernels.loadF32(x, x1 + k + lanes), a11);
                a20 = w0.fma(Kernels.loadF32(x, x2 + k), a20);
                a21 = w1.fma(Kernels.loadF32(x, x2 + k + lanes), a21);
                a30 = w0.fma(Kernels.loadF32(x, x3 + k), a30);
                a31 = w1.fma(Kernels.loadF32(x, x3 + k + lanes), a31);
            }
            if (k + lanes <= cols) {
                FloatVector w0 = load(wd, wRow + k).mul(s);
                a00 = w0.fma(Kernels.loadF32(x, x0 + k), a00);
                a10 = w0.fma(Kernels.loadF32(x, x1 + k), a10);
                a20 = w0.fma(Kernels.loadF32(x, x2 + k), a20);
                a30 = w0.fma(Kernels.loadF32(x, x3 + k), a30);
                k += lanes;
            }
        }
        float s0 = Kernels.sumLanes(a00.add(a01));
        float s1 = Kernels.sumLanes(a10.add(a11));
        float s2 = Kernels.sumLanes(a20.add(a21));
        float s3 = Kernels.sumLanes(a30.add(a31));
        for (; k < cols; k++) {
            float wk = weight(wd, wRow, sd, sRow, k);
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
