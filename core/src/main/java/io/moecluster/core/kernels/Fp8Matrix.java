package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * FP8 E4M3 weights with one f32 multiplier per {@code blockRows x blockCols} block, as DeepSeek-V3
 * ships its linear layers: the weight tensor, one byte per weight ({@link Fp8E4m3}), and its
 * {@code weight_scale_inv} companion, {@code [ceil(rows / blockRows), ceil(cols / blockCols)]} f32,
 * whose edge blocks cover what is left (576 rows in 128-row blocks: four whole blocks and a half).
 * The weight is {@code w[r, c] = fp8[r, c] * scale[r / blockRows, c / blockCols]} (the name
 * notwithstanding, the "inverse" scale multiplies). Both tensors stay as they were mapped; the
 * kernels decode and scale each vector of bytes in registers, so a token reads one byte per weight
 * and no widened copy exists. {@link #byteSize} counts both tensors.
 *
 * <p>Row kernels as {@link WeightMatrix} describes them, with the block scale folded into the
 * decode: a vector of bytes becomes f32 lanes by int operations (the sign to bit 31, the seven
 * exponent-and-mantissa bits to bits 20-26, which reads as the value times 2^-120, subnormals
 * included; NaN where those seven bits are all ones), then one multiply by {@code scale * 2^120}
 * gives {@code fp8 * scale} rounded once, the same f32 the scalar decode {@code toFloat(b) * scale}
 * gives. Each token then accumulates exactly as the other formats do: one chain per vector parity,
 * summed by {@link Kernels#sumLanes}, and a scalar tail for the columns after the last whole vector.
 * A vector never straddles two column blocks when {@code blockCols} is a power of two no smaller
 * than the lane count (128 and 16 are, at every width), so each vector's scale is found by a shift;
 * other block widths, and scales of 2^7 or more (whose product with 2^120 would overflow), take the
 * scalar loops, which are correct for any layout.
 *
 * <p>NaN: E4M3's two NaN encodings ({@code 0x7f}, {@code 0xff}) never occur in a real checkpoint,
 * and telling them apart costs the vector decode as much again (a compare and a blend per vector,
 * measured: twice the time of a decode without). So the constructor scans the weights once (one
 * pass over the bytes, vectorised) and a matrix that holds a NaN encoding runs the scalar loops,
 * whose decode ({@link Fp8E4m3#toFloat}) gives NaN as the format says; the others decode without
 * the check. Every bit pattern means what the specification says, in every kernel.
 */
public final class Fp8Matrix extends WeightMatrix {
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(Kernels.LE);
    /** Bytes of one f32 vector's worth of weights, where the Vector API has such a shape (64 bits and up). */
    private static final VectorSpecies<Byte> B = Kernels.SCALAR || Kernels.F.vectorBitSize() < 256 ? null
            : VectorSpecies.of(byte.class, VectorShape.forBitSize(Kernels.F.vectorBitSize() / 4));
    /** At 128 bits the four bytes are one int load, spread over the lanes by these left shifts. */
    private static final IntVector SPREAD = Kernels.SCALAR || Kernels.F.vectorBitSize() != 128 ? null
            : IntVector.fromArray(Kernels.I, new int[] {24, 16, 8, 0}, 0);
    private static final float TWO_120 = 0x1p120f;

    private final MemorySegment scales;
    private final int blockRows;
    private final int blockCols;
    private final int scaleCols;
    /** Whether the vector kernels apply (block width a multiple of the lanes, scales below 2^7, no NaN encodings). */
    private final boolean vectorized;
    /** Whether a weight is one of the NaN encodings. */
    private final boolean hasNan;
    private final int blockShift;

    Fp8Matrix(String name, MemorySegment data, int rows, int cols, MemorySegment scales, int blockRows, int blockCols) {
        super(name, data, rows, cols, (long) rows * cols);
        if (blockRows < 1 || blockCols < 1) {
            throw new IllegalArgumentException(name + ": block size [" + blockRows + ", " + blockCols + "] must be positive");
        }
        int scaleRows = ceilDiv(rows, blockRows);
        this.scaleCols = ceilDiv(cols, blockCols);
        if (scales.byteSize() != (long) scaleRows * scaleCols * 4) {
            throw new IllegalArgumentException(name + ": " + scales.byteSize() + " bytes of F32 block scales, expected ["
                    + scaleRows + ", " + scaleCols + "] for " + rows + "x" + cols + " in " + blockRows + "x" + blockCols
                    + " blocks");
        }
        this.scales = scales;
        this.blockRows = blockRows;
        this.blockCols = blockCols;
        boolean small = true;
        for (long i = 0, n = (long) scaleRows * scaleCols; i < n; i++) {
            small &= Math.abs(scales.getAtIndex(Kernels.F32, i)) < 0x1p7f;
        }
        this.hasNan = containsNan(data);
        this.blockShift = Integer.numberOfTrailingZeros(blockCols);
        this.vectorized = !Kernels.SCALAR && blockCols % Kernels.LANES == 0 && Integer.bitCount(blockCols) == 1
                && small && !hasNan;
    }

    /** Whether any byte of {@code data} is a NaN encoding ({@code 0x7f} or {@code 0xff}): one vectorised pass. */
    static boolean containsNan(MemorySegment data) {
        long n = data.byteSize();
        long i = 0;
        if (!Kernels.SCALAR) {
            VectorSpecies<Byte> bytes = ByteVector.SPECIES_PREFERRED;
            ByteVector acc = ByteVector.zero(bytes);
            for (long bound = n - bytes.length(); i <= bound; i += bytes.length()) {
                // (b & 0x7f) + 1 sets bit 7 exactly for the magnitude 0x7f; OR it into the accumulator.
                acc = acc.or(ByteVector.fromMemorySegment(bytes, data, i, Kernels.LE).and((byte) 0x7f).add((byte) 1));
            }
            if (acc.and((byte) 0x80).compare(VectorOperators.NE, 0).anyTrue()) {
                return true;
            }
        }
        for (; i < n; i++) {
            if ((data.get(ValueLayout.JAVA_BYTE, i) & 0x7f) == 0x7f) {
                return true;
            }
        }
        return false;
    }

    /** Whether the weights hold a NaN encoding (and so run the scalar loops). */
    public boolean hasNan() {
        return hasNan;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    @Override
    public String format() {
        return "F8_E4M3";
    }

    /** The f32 block scales ({@code weight_scale_inv}), {@code [ceil(rows / blockRows), ceil(cols / blockCols)]}. */
    public MemorySegment scales() {
        return scales;
    }

    public int blockRows() {
        return blockRows;
    }

    public int blockCols() {
        return blockCols;
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

    /** The multiplier of weight {@code (row, col)}. */
    float scale(int row, int col) {
        return scales.getAtIndex(Kernels.F32, (long) (row / blockRows) * scaleCols + col / blockCols);
    }

    /** Weight {@code (row, col)} as f32: the decoded byte times its block's scale, rounded once. */
    float weight(int row, int col) {
        return Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, (long) row * cols + col)) * scale(row, col);
    }

    /**
     * {@link Kernels#LANES} bytes from byte {@code index} as f32 lanes, each the value times 2^-120
     * (multiply by 2^120, or by {@code scale * 2^120}, for the value). For the 254 finite encodings
     * only: the NaN encodings come out as ±480 * 2^-120 (a matrix that holds them never calls this).
     */
    public static FloatVector loadScaledDown(MemorySegment seg, long index) {
        IntVector b;
        if (B != null) {
            b = (IntVector) ByteVector.fromMemorySegment(B, seg, index, Kernels.LE).convertShape(VectorOperators.B2I, Kernels.I, 0);
        } else {
            // 128 bits: byte i of the little-endian int to the top of lane i, then back down, sign-extended.
            b = IntVector.broadcast(Kernels.I, seg.get(I32_LE, index)).lanewise(VectorOperators.LSHL, SPREAD)
                    .lanewise(VectorOperators.ASHR, 24);
        }
        return b.lanewise(VectorOperators.LSHL, 20).and(0x87f0_0000).reinterpretAsFloats();
    }

    /** {@link Kernels#LANES} finite weights from byte {@code index} decoded to f32 (no block scale), for tests. */
    public static FloatVector load(MemorySegment seg, long index) {
        return loadScaledDown(seg, index).mul(TWO_120);
    }

    @Override
    public void copyRowTo(int row, MemorySegment out, long outIndex) {
        long base = (long) row * cols;
        int c = 0;
        if (vectorized) {
            long sRow = (long) (row / blockRows) * scaleCols;
            int vecEnd = (cols / Kernels.LANES) * Kernels.LANES;
            for (; c < vecEnd; c += Kernels.LANES) {
                float s = scales.getAtIndex(Kernels.F32, sRow + (c >>> blockShift)) * TWO_120;
                loadScaledDown(data, base + c).mul(s).intoMemorySegment(out, (outIndex + c) * 4, Kernels.LE);
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
        for (int r = rowStart; r < rowEnd; r++) {
            int b = 0;
            for (; b + 4 <= batch; b += 4) {
                dot4(r, x, xBase + (long) b * cols, y, yBase + (long) b * outRows + r, outRows);
            }
            for (; b < batch; b++) {
                y.setAtIndex(Kernels.F32, yBase + (long) b * outRows + r, dot1(r, x, xBase + (long) b * cols));
            }
        }
    }

    /** Plain loop in index order over the dequantised weights: the scalar kernels, and the vector kernels' tail. */
    private float dotScalar(int r, MemorySegment x, long xRow) {
        float sum = 0f;
        for (int k = 0; k < cols; k++) {
            sum += weight(r, k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    private float dot1(int r, MemorySegment x, long xRow) {
        final MemorySegment wd = data;
        final int lanes = Kernels.LANES;
        final int cols = this.cols;
        final int vecEnd = (cols / lanes) * lanes;
        final long wRow = (long) r * cols;
        final long sRow = (long) (r / blockRows) * scaleCols;
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        final int shift = blockShift;
        int k = 0;
        for (; k < vecEnd; k += lanes) {
            // The scale looked up per vector (a shift): faster than a loop per block, measured.
            float s = scales.getAtIndex(Kernels.F32, sRow + (k >>> shift)) * TWO_120;
            FloatVector w = loadScaledDown(wd, wRow + k).mul(s);
            FloatVector n0 = w.fma(Kernels.loadF32(x, xRow + k), a0);
            a0 = a1;
            a1 = n0;
        }
        float sum = Kernels.sumLanes(a0.add(a1));
        for (k = vecEnd; k < cols; k++) {
            sum += weight(r, k) * x.getAtIndex(Kernels.F32, xRow + k);
        }
        return sum;
    }

    /** Tokens {@code xRow + [0, 4) * cols}, each weight vector decoded and scaled once for all four. */
    private void dot4(int r, MemorySegment x, long xRow, MemorySegment y, long yIndex, int yStride) {
        final MemorySegment wd = data;
        final int lanes = Kernels.LANES;
        final int cols = this.cols;
        final int vecEnd = (cols / lanes) * lanes;
        final long wRow = (long) r * cols;
        final long sRow = (long) (r / blockRows) * scaleCols;
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
        final int shift = blockShift;
        for (int k = 0; k < vecEnd; k += lanes) {
            // One chain per vector parity and token, as in dot1 (the swap keeps F16Matrix's shape).
            // The scale is looked up per vector: measured faster than a loop per block, whose short
            // inner loops the JIT unrolls badly.
            float s = scales.getAtIndex(Kernels.F32, sRow + (k >>> shift)) * TWO_120;
            FloatVector w = loadScaledDown(wd, wRow + k).mul(s);
            FloatVector n0 = w.fma(Kernels.loadF32(x, x0 + k), a00);
            FloatVector n1 = w.fma(Kernels.loadF32(x, x1 + k), a10);
            FloatVector n2 = w.fma(Kernels.loadF32(x, x2 + k), a20);
            FloatVector n3 = w.fma(Kernels.loadF32(x, x3 + k), a30);
            a00 = a01;
            a01 = n0;
            a10 = a11;
            a11 = n1;
            a20 = a21;
            a21 = n2;
            a30 = a31;
            a31 = n3;
        }
        float s0 = Kernels.sumLanes(a00.add(a01));
        float s1 = Kernels.sumLanes(a10.add(a11));
        float s2 = Kernels.sumLanes(a20.add(a21));
        float s3 = Kernels.sumLanes(a30.add(a31));
        for (int k = vecEnd; k < cols; k++) {
            float wk = weight(r, k);
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
