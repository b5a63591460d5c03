package io.moecluster.core.kernels;

/**
 * The OCP 8-bit float E4M3 ("e4m3fn", {@code torch.float8_e4m3fn}, safetensors {@code F8_E4M3}): one
 * sign bit, four exponent bits with bias 7, three mantissa bits; no infinities; {@code S.1111.111}
 * is NaN, so the largest finite value is 448. Exponent field 0 holds the subnormals
 * {@code m/8 * 2^-6}; every other exponent field e the normals {@code (1 + m/8) * 2^(e-7)}.
 *
 * <p>Every value converts to f32 exactly. The kernels ({@link Fp8Matrix}) decode a whole vector of
 * bytes with int lane operations; {@link #toFloat} is the scalar form of the same rule.
 */
public final class Fp8E4m3 {
    /** The largest finite magnitude, {@code 0x7e}. */
    public static final float MAX = 448f;

    private static final float[] TABLE = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            TABLE[b] = decodeBits(b);
        }
    }

    private Fp8E4m3() {
    }

    /**
     * The bit trick the vector kernels use, on one value: the sign to bit 31 and the seven
     * exponent-and-mantissa bits to f32 bits 20-26, read as a float that is exactly the value times
     * 2^-120 (the difference of the exponent biases, 127 - 7; subnormals included, as f32 subnormals),
     * then multiplied by 2^120; NaN where the seven bits are all ones.
     */
    private static float decodeBits(int b) {
        int bits = ((b << 24) & 0x8000_0000) | ((b & 0x7f) << 20);
        if ((b & 0x7f) == 0x7f) {
            return Float.intBitsToFloat(bits | 0x7fc0_0000);
        }
        return Float.intBitsToFloat(bits) * 0x1p120f;
    }

    /** The value of the byte {@code bits} (low 8 bits used). */
    public static float toFloat(int bits) {
        return TABLE[bits & 0xff];
    }

    /**
     * The nearest E4M3 value to {@code f}, ties to the even mantissa, as PyTorch's conversion rounds;
     * magnitudes beyond 448 saturate to ±448 (quantizers divide by {@code amax / 448} first, so
     * nothing real is lost), NaN stays NaN.
     */
    public static byte fromFloat(float f) {
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
        if (Float.isNaN(f)) {
            return (byte) (sign | 0x7f);
        }
        float a = Math.abs(f);
        int code;
        if (a >= MAX) {
            code = 0x7e;
        } else if (a < 0x1p-6f) {
            // Subnormal steps of 2^-9; rint rounds half to even, and 8 steps is the smallest normal.
            code = (int) Math.rint(a * 512f);
        } else {
            int e = Math.getExponent(a);                  // -6..8
            float mantissa = a / Math.scalb(1f, e);       // [1, 2), exact
            int m = (int) Math.rint((mantissa - 1f) * 8f);
            code = ((e + 7) << 3) + m;                    // m == 8 carries into the exponent
            if (code > 0x7e) {
                code = 0x7e;
            }
        }
        return (byte) (sign | code);
    }
}
