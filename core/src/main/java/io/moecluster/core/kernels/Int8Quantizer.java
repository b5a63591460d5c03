package io.moecluster.core.kernels;

/**
 * The int8 format's quantization of one row ({@link Int8Matrix}): per block of 32 weights,
 * {@code scale = max|w| / 127} and {@code q = round(w / scale)} (to nearest, ties away from zero,
 * within [-127, 127]; an all-zero block gets scale 0 and zeros). Symmetric, as llama.cpp's Q8_0:
 * the largest weight of a block is exact, and every weight is within {@code scale / 2} of
 * {@code q * scale}.
 */
public final class Int8Quantizer {
    private Int8Quantizer() {
    }

    /**
     * Quantizes {@code w[0, cols)} into {@code q[0, cols)} (integers, as floats) and
     * {@code scales[0, ceil(cols / 32))}.
     *
     * @return -1, or the index of the first weight that is not finite (nothing can represent it)
     */
    public static int quantizeRow(float[] w, int cols, float[] q, float[] scales) {
        for (int b = 0, start = 0; start < cols; b++, start += Int8Matrix.BLOCK) {
            int end = Math.min(cols, start + Int8Matrix.BLOCK);
            float amax = 0f;
            for (int i = start; i < end; i++) {
                if (!Float.isFinite(w[i])) {
                    return i;
                }
                amax = Math.max(amax, Math.abs(w[i]));
            }
            float scale = amax / 127f;
            scales[b] = scale;
            for (int i = start; i < end; i++) {
                // w / scale, not w * (1 / scale): the largest weight maps to exactly +-127.
                q[i] = scale == 0f ? 0f : Math.max(-127, Math.min(127, Math.round(w[i] / scale)));
            }
        }
        return -1;
    }
}
