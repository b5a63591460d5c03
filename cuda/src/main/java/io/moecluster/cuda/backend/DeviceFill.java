package io.moecluster.cuda.backend;

/**
 * The values {@code moe_fill_uniform_bf16} (fill.cu) writes, computed on the host: element
 * {@code i} of seed {@code s} is a SplitMix64 hash of {@code s ^ i} turned into [-1, 1) with 24
 * random bits, times {@code scale}, truncated to BF16. Exact in f32 when {@code scale} is a power of
 * two, so host and device agree to the bit.
 */
public final class DeviceFill {
    private DeviceFill() {
    }

    static long splitmix64(long z) {
        z += 0x9e3779b97f4a7c15L;
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** Element {@code i}'s BF16 bits. */
    public static short bf16(long seed, long i, float scale) {
        long bits = splitmix64(seed ^ i);
        float u = (float) (bits >>> 40) * (1.0f / 8388608.0f) - 1.0f;
        return (short) (Float.floatToRawIntBits(u * scale) >>> 16);
    }

    /** Element {@code i} as f32. */
    public static float value(long seed, long i, float scale) {
        return Float.intBitsToFloat((bf16(seed, i, scale) & 0xffff) << 16);
    }
}
