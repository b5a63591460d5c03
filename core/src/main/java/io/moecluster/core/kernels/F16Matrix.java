package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * IEEE binary16 weights, 2 bytes each, little-endian: the mapped f16 bytes, widened to f32 in
 * registers by {@link #loadF16} (no f32 copy; half the bytes per token of F32).
 *
 * <p>Row kernels as {@link WeightMatrix} describes them: four tokens share each weight load, every
 * token keeps two accumulators in one fixed order, lanes reduced by {@link Kernels#sumLanes}.
 */
public final class F16Matrix extends WeightMatrix {
    private static final ValueLayout.OfShort F16_RAW = ValueLayout.JAVA_SHORT_UNALIGNED;
    /** Whether this JVM's {@link Float#float16ToFloat} quiets a signalling NaN (sets the top mantissa bit). */
    private static final boolean QUIETS_NANS =
            (Float.floatToRawIntBits(Float.float16ToFloat((short) 0x7c01)) & 0x0040_0000) != 0;

    F16Matrix(String name, MemorySegment data, int rows, int cols) {
        super(name, data, rows, cols, (long) rows * cols * 2);
    }

    @Override
    public String format() {
        return "F16";
    }

    /**
     * Loads {@link Kernels#LANES} f16 values from element {@code index} and widens them to f32 as
     * {@link Float#float16ToFloat} does, bit for bit, with int lane ops (the Vector API of Java 25
     * has no f16 conversion); six per vector after the load's widening to int lanes:
     * <ol>
     *   <li>the sign-extended short shifted left by 13 puts the magnitude's 15 bits in an f32's
     *       exponent and mantissa fields and copies of the sign in bits 28-31; clearing bits 28-30
     *       leaves {@code sign | magnitude << 13};
     *   <li>times 2^112 (127 - 15, the difference of the exponent biases) that is the value, exactly,
     *       for zeros, subnormals and normals alike, the sign carried through;
     *   <li>where the f16 exponent is 31 (infinity, NaN) the f32 exponent must be 255, with the sign
     *       and NaN payload kept: a masked OR, before the multiply where {@code Float.float16ToFloat}
     *       quiets signalling NaNs (its intrinsic on x86, F16C's conversion, does, as any arithmetic
     *       there does), after it where it keeps them (its Java code does).
     * </ol>
     */
    public static FloatVector loadF16(MemorySegment seg, long index) {
        ShortVector s = ShortVector.fromMemorySegment(Kernels.S, seg, index * 2, Kernels.LE);
        IntVector h = (IntVector) s.convertShape(VectorOperators.S2I, Kernels.I, 0);
        IntVector bits = h.lanewise(VectorOperators.LSHL, 13).and(0x8fffffff);
        VectorMask<Integer> infOrNan = h.and(0x7c00).compare(VectorOperators.EQ, 0x7c00);
        if (QUIETS_NANS) {
            return bits.lanewise(VectorOperators.OR, 0x7f800000, infOrNan).reinterpretAsFloats().mul(0x1p112f);
        }
        return bits.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts()
                .lanewise(VectorOperators.OR, 0x7f800000, infOrNan).reinterpretAsFloats();
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
        for (int r = rowStart; r < rowEnd; r++) {
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

    /** Weights {@code [index, index + LANES)} as f32 lanes. */
    private static FloatVector load(MemorySegment wd, long index) {
        return loadF16(wd, index);
    }

    /** Weight {@code index} as f32. */
    private static float scalar(MemorySegment wd, long index) {
        return Float.float16ToFloat(wd.get(F16_RAW, index * 2));
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
        // One weight vector per iteration, alternating between each token's two accumulators (the
        // swap below): the sums of dot1's two-vector steps and single step, in the same order (the
        // final add is commutative), with half the code for C2 to inline. Written like the other
        // formats' dot4, the wider f16 load pushed C2 past its inlining node limit
        // (NodeCountInliningCutoff): vectors were boxed and batch 8 ran 13x slower.
        int k = 0;
        for (int bound = cols - lanes; k <= bound; k += lanes) {
            FloatVector w = load(wd, wRow + k);
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
