package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API primitives over f32 activations in {@link MemorySegment}s (the weight formats'
 * row kernels are in the {@link WeightMatrix} variants).
 *
 * <p>The species is the widest the CPU prefers (512 bits with AVX-512, 256 with AVX2), chosen at
 * run time, unless {@code -Dmoe.vectorBits=128|256|512} picks another or {@code 0} asks for plain
 * scalar loops ({@link VectorWidth}, read once when this class is initialised). Every reduction runs
 * in one fixed order that does not depend on the batch or the thread split, so a token's result is
 * bitwise the same in prefill and in decode.
 */
public final class Kernels {
    /** The width in effect, from {@link VectorWidth#fromSystemProperty()}. */
    public static final VectorWidth WIDTH = VectorWidth.fromSystemProperty();
    /**
     * {@code moe.vectorBits=0}: every kernel runs plain Java loops over the whole range (what the
     * vector code does for its tail), summing in index order. A constant, so the JIT drops the
     * branch not taken.
     */
    public static final boolean SCALAR = WIDTH.scalar();
    /** The f32 species of the vector kernels (when {@link #SCALAR}, the CPU's preferred one, unused by the kernels). */
    public static final VectorSpecies<Float> F = WIDTH.species();
    /** Shorts of half F's width: one load of them widens to exactly one F vector. */
    public static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    public static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));
    public static final int LANES = F.length();

    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    public static final ValueLayout.OfShort BF16_RAW = ValueLayout.JAVA_SHORT_UNALIGNED;
    public static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Rotations by LANES/2, LANES/4, ..., 1: the fixed tree of {@link #sumLanes}. */
    private static final VectorShuffle<Float>[] FOLDS = folds();

    private Kernels() {
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] folds() {
        int steps = Integer.numberOfTrailingZeros(LANES);
        VectorShuffle<Float>[] folds = new VectorShuffle[steps];
        for (int i = 0, shift = LANES / 2; shift >= 1; i++, shift /= 2) {
            folds[i] = VectorShuffle.iota(F, shift, 1, true);
        }
        return folds;
    }

    /**
     * The width the kernels run at, for logs: "512-bit vectors (16 f32 lanes, the CPU's preferred
     * width)", "256-bit vectors (8 f32 lanes, set by moe.vectorBits=256)", "scalar (moe.vectorBits=0)".
     */
    public static String describe() {
        return WIDTH.describe();
    }

    /**
     * Sum of the lanes in a fixed pairwise tree. {@code reduceLanes(ADD)} leaves the order of a
     * float sum unspecified, and the interpreter's and the JIT's orders differ, so one token's
     * result could depend on how warm the code was; lanewise adds and rotations are exact
     * whatever runs them, so this sum is the same in every tier.
     */
    public static float sumLanes(FloatVector v) {
        for (VectorShuffle<Float> fold : FOLDS) {
            v = v.add(v.rearrange(fold));
        }
        return v.lane(0);
    }

    public static FloatVector loadF32(MemorySegment seg, long floatIndex) {
        return FloatVector.fromMemorySegment(F, seg, floatIndex * 4, LE);
    }

    /** Loads LANES bf16 values starting at element {@code index} and widens them to f32. */
    public static FloatVector loadBf16(MemorySegment seg, long index) {
        ShortVector s = ShortVector.fromMemorySegment(S, seg, index * 2, LE);
        IntVector widened = (IntVector) s.convertShape(VectorOperators.S2I, I, 0);
        return widened.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    public static float get(MemorySegment seg, long index) {
        return seg.getAtIndex(F32, index);
    }

    public static void set(MemorySegment seg, long index, float value) {
        seg.setAtIndex(F32, index, value);
    }

    /** Dot product of {@code n} floats at {@code a[aIndex..]} and {@code b[bIndex..]}. */
    public static float dot(MemorySegment a, long aIndex, MemorySegment b, long bIndex, int n) {
        if (SCALAR) {
            float sum = 0f;
            for (int i = 0; i < n; i++) {
                sum += get(a, aIndex + i) * get(b, bIndex + i);
            }
            return sum;
        }
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += LANES) {
            acc = loadF32(a, aIndex + i).fma(loadF32(b, bIndex + i), acc);
        }
        float sum = sumLanes(acc);
        for (; i < n; i++) {
            sum += get(a, aIndex + i) * get(b, bIndex + i);
        }
        return sum;
    }

    /** {@code y[yIndex..] += alpha * x[xIndex..]} over {@code n} floats. */
    public static void axpy(float alpha, MemorySegment x, long xIndex, MemorySegment y, long yIndex, int n) {
        int i = 0;
        if (!SCALAR) {
            FloatVector va = FloatVector.broadcast(F, alpha);
            for (int bound = F.loopBound(n); i < bound; i += LANES) {
                FloatVector r = loadF32(x, xIndex + i).fma(va, loadF32(y, yIndex + i));
                r.intoMemorySegment(y, (yIndex + i) * 4, LE);
            }
        }
        for (; i < n; i++) {
            set(y, yIndex + i, get(y, yIndex + i) + alpha * get(x, xIndex + i));
        }
    }

    /** {@code y[yIndex..] = alpha * x[xIndex..]} over {@code n} floats. */
    public static void scaleInto(float alpha, MemorySegment x, long xIndex, MemorySegment y, long yIndex, int n) {
        int i = 0;
        for (int bound = SCALAR ? 0 : F.loopBound(n); i < bound; i += LANES) {
            loadF32(x, xIndex + i).mul(alpha).intoMemorySegment(y, (yIndex + i) * 4, LE);
        }
        for (; i < n; i++) {
            set(y, yIndex + i, alpha * get(x, xIndex + i));
        }
    }

    /** {@code y[yIndex..] += x[xIndex..]} over {@code n} floats. */
    public static void add(MemorySegment x, long xIndex, MemorySegment y, long yIndex, int n) {
        int i = 0;
        for (int bound = SCALAR ? 0 : F.loopBound(n); i < bound; i += LANES) {
            loadF32(x, xIndex + i).add(loadF32(y, yIndex + i)).intoMemorySegment(y, (yIndex + i) * 4, LE);
        }
        for (; i < n; i++) {
            set(y, yIndex + i, get(y, yIndex + i) + get(x, xIndex + i));
        }
    }

    /** {@code x[i] *= s} over {@code n} floats. */
    public static void scale(MemorySegment x, long index, int n, float s) {
        int i = 0;
        for (int bound = SCALAR ? 0 : F.loopBound(n); i < bound; i += LANES) {
            loadF32(x, index + i).mul(s).intoMemorySegment(x, (index + i) * 4, LE);
        }
        for (; i < n; i++) {
            set(x, index + i, get(x, index + i) * s);
        }
    }

    /**
     * RMSNorm as transformers computes it: {@code out = w * x / sqrt(mean(x^2) + eps)}, the mean
     * accumulated in f32 lanes then reduced.
     */
    public static void rmsNorm(MemorySegment x, long xIndex, MemorySegment weight, MemorySegment out, long outIndex,
                               int n, float eps) {
        float ss = dot(x, xIndex, x, xIndex, n);
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        int i = 0;
        for (int bound = SCALAR ? 0 : F.loopBound(n); i < bound; i += LANES) {
            loadF32(x, xIndex + i).mul(inv).mul(loadF32(weight, i)).intoMemorySegment(out, (outIndex + i) * 4, LE);
        }
        for (; i < n; i++) {
            set(out, outIndex + i, get(x, xIndex + i) * inv * get(weight, i));
        }
    }

    /** SwiGLU's gating in place: {@code gate[i] = silu(gate[i]) * up[i]}. */
    public static void siluMul(MemorySegment gate, long gateIndex, MemorySegment up, long upIndex, int n) {
        for (int i = 0; i < n; i++) {
            float g = get(gate, gateIndex + i);
            float silu = (float) (g / (1.0 + Math.exp(-g)));
            set(gate, gateIndex + i, silu * get(up, upIndex + i));
        }
    }

    /** Numerically stable softmax in place over {@code n} floats, summed in index order. */
    public static void softmax(MemorySegment x, long index, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, get(x, index + i));
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(get(x, index + i) - max);
            set(x, index + i, e);
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            set(x, index + i, get(x, index + i) * inv);
        }
    }
}
