package io.moecluster.core.kernels;

import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The vector width the kernels run at: the CPU's preferred width unless the system property
 * {@value #PROPERTY} says otherwise ({@code 128}, {@code 256} or {@code 512} bits, or {@code 0} for
 * plain scalar Java loops). {@link Kernels} reads it once, when it is initialised, through
 * {@link #fromSystemProperty()}; a launcher calls the same method first so that a bad value is one
 * clean error line at start-up rather than an {@link ExceptionInInitializerError} from the first
 * kernel call.
 *
 * <p>Why override it: results are bit-for-bit reproducible on one vector width but only agree to
 * float rounding across widths, so a 512-bit host can reproduce what a 256-bit (AVX2) host computes,
 * and {@code 0} gives a reference without any lane reordering.
 *
 * @param bits 0 (scalar), or the f32 vector width in bits
 * @param overridden whether {@value #PROPERTY} chose it (rather than the CPU's preference)
 */
public record VectorWidth(int bits, boolean overridden) {
    /** The system property that overrides the width. */
    public static final String PROPERTY = "moe.vectorBits";
    /** {@value #PROPERTY}{@code =0}: no vectors, plain Java loops. */
    public static final int SCALAR = 0;
    private static final int[] VECTOR_BITS = {128, 256, 512};

    public VectorWidth {
        if (bits != SCALAR && (bits < 128 || Integer.bitCount(bits) != 1)) {
            throw new IllegalArgumentException("not a vector width: " + bits + " bits");
        }
    }

    /**
     * The width this JVM runs the kernels at: {@value #PROPERTY} if set, else the CPU's preferred
     * width.
     *
     * @throws IllegalArgumentException naming {@value #PROPERTY} and the allowed values, for a value
     *     that is not one of them or is wider than this CPU's vectors
     */
    public static VectorWidth fromSystemProperty() {
        return parse(System.getProperty(PROPERTY), preferredBits(), maxBits());
    }

    /**
     * The width for a value of {@value #PROPERTY} ({@code null}: not set) on a CPU whose preferred
     * and widest f32 vectors have the given sizes; the rules of {@link #fromSystemProperty()},
     * separate from this machine so they can be tested.
     */
    public static VectorWidth parse(String value, int preferredBits, int maxBits) {
        if (value == null) {
            // A CPU with no 128-bit vectors (none the JDK supports today) runs the scalar loops:
            // the bf16/f16 loads need shorts of half the f32 width, at least 64 bits.
            return new VectorWidth(preferredBits >= 128 ? preferredBits : SCALAR, false);
        }
        int bits;
        try {
            bits = Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(PROPERTY + "=" + value + " is not a number; " + allowed(maxBits));
        }
        if (bits == SCALAR) {
            return new VectorWidth(SCALAR, true);
        }
        boolean known = false;
        for (int b : VECTOR_BITS) {
            known |= b == bits;
        }
        if (!known) {
            throw new IllegalArgumentException(PROPERTY + "=" + value + " is not a vector width; " + allowed(maxBits));
        }
        if (bits > maxBits) {
            throw new IllegalArgumentException(PROPERTY + "=" + value + " is wider than the widest vectors of this CPU and JVM ("
                    + maxBits + " bits, FloatVector.SPECIES_MAX); " + allowed(maxBits));
        }
        return new VectorWidth(bits, true);
    }

    /** "allowed values: 0 (scalar), 128, 256 (this CPU's widest; the preferred width when unset)". */
    public static String allowed(int maxBits) {
        StringBuilder s = new StringBuilder("allowed values: 0 (scalar)");
        for (int b : VECTOR_BITS) {
            if (b <= maxBits) {
                s.append(", ").append(b);
            }
        }
        return s.append(" (bits, up to ").append(maxBits)
                .append(" on this CPU; unset means the CPU's preferred width)").toString();
    }

    /** The f32 vector width the CPU prefers, in bits ({@code FloatVector.SPECIES_PREFERRED}). */
    public static int preferredBits() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    /** The widest f32 vectors this CPU (and JVM flags such as {@code MaxVectorSize}) allow, in bits. */
    public static int maxBits() {
        return FloatVector.SPECIES_MAX.vectorBitSize();
    }

    public boolean scalar() {
        return bits == SCALAR;
    }

    /**
     * The f32 species of this width. Scalar kernels use no vectors; their species is the CPU's
     * preferred one, for code that measures the machine rather than computing results
     * ({@link ReadBandwidth}).
     */
    public VectorSpecies<Float> species() {
        return scalar() ? FloatVector.SPECIES_PREFERRED : VectorSpecies.of(float.class, VectorShape.forBitSize(bits));
    }

    /**
     * For logs: "512-bit vectors (16 f32 lanes, the CPU's preferred width)", "256-bit vectors (8 f32
     * lanes, set by moe.vectorBits=256)", "scalar (moe.vectorBits=0)".
     */
    public String describe() {
        if (scalar()) {
            return String.format(Locale.ROOT, "scalar (%s=0)", PROPERTY);
        }
        return String.format(Locale.ROOT, "%d-bit vectors (%d f32 lanes, %s)", bits, bits / 32,
                overridden ? "set by " + PROPERTY + "=" + bits : "the CPU's preferred width");
    }
}
