package io.moecluster.core.attention;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.RopeScaling;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * RoPE over the first {@code dim} dimensions of each head, tabulated once per position: angles in
 * double, cos and sin rounded to f32, so applying it costs two loads and four multiplies per pair.
 *
 * <ul>
 *   <li>Pairs: the rotate-half convention of transformers (Llama, Mixtral, Qwen2) pairs dimension
 *       {@code i} with {@code i + dim/2}; DeepSeek-V3's {@code rope_interleave} pairs {@code 2i}
 *       with {@code 2i + 1} (transformers de-interleaves, rotates halves, and keeps the permuted
 *       layout, which changes no dot product between a rotated q and k).
 *   <li>Frequencies: {@code 1 / theta^(2i/dim)}, or YaRN's blend of interpolated and extrapolated
 *       ones ({@link RopeScaling#inverseFrequencies}), whose attention factor multiplies cos and sin.
 * </ul>
 */
public final class RotaryEmbedding {
    private final int dim;
    private final int half;
    private final boolean interleaved;
    private final int maxPositions;
    private final MemorySegment cos;
    private final MemorySegment sin;

    /** Plain RoPE over whole heads of {@code headDim}, rotate-half pairs. */
    public RotaryEmbedding(int headDim, double theta, int maxPositions, Arena arena) {
        this(headDim, defaultFrequencies(headDim, theta), 1.0, false, maxPositions, arena);
    }

    /**
     * @param inverseFrequencies {@code dim / 2} angular frequencies
     * @param cosSinScale multiplies every cos and sin (YaRN's attention factor; 1 otherwise)
     */
    public RotaryEmbedding(int dim, double[] inverseFrequencies, double cosSinScale, boolean interleaved,
                           int maxPositions, Arena arena) {
        if (dim % 2 != 0 || inverseFrequencies.length != dim / 2) {
            throw new IllegalArgumentException("RoPE over " + dim + " dimensions needs an even count and "
                    + dim / 2 + " frequencies, got " + inverseFrequencies.length);
        }
        this.dim = dim;
        this.half = dim / 2;
        this.interleaved = interleaved;
        this.maxPositions = maxPositions;
        this.cos = arena.allocate((long) maxPositions * half * 4, 64);
        this.sin = arena.allocate((long) maxPositions * half * 4, 64);
        for (int i = 0; i < half; i++) {
            double invFreq = inverseFrequencies[i];
            for (int p = 0; p < maxPositions; p++) {
                double angle = p * invFreq;
                Kernels.set(cos, (long) p * half + i, (float) (Math.cos(angle) * cosSinScale));
                Kernels.set(sin, (long) p * half + i, (float) (Math.sin(angle) * cosSinScale));
            }
        }
    }

    /**
     * The RoPE of {@code config}: over {@link ModelConfig#ropeDim()} dimensions, interleaved for
     * MLA models with {@code rope_interleave}, YaRN where {@code rope_scaling} declares it.
     */
    public static RotaryEmbedding of(ModelConfig config, int maxPositions, Arena arena) {
        int dim = config.ropeDim();
        boolean interleaved = config.isMla() && config.mla().ropeInterleave();
        RopeScaling yarn = config.ropeScaling();
        if (yarn == null) {
            return new RotaryEmbedding(dim, defaultFrequencies(dim, config.ropeTheta()), 1.0, interleaved,
                    maxPositions, arena);
        }
        return new RotaryEmbedding(dim, yarn.inverseFrequencies(dim, config.ropeTheta(), config.maxPositionEmbeddings()),
                yarn.attentionFactor(config.maxPositionEmbeddings()), interleaved, maxPositions, arena);
    }

    static double[] defaultFrequencies(int dim, double theta) {
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / dim);
        }
        return inv;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** The tabulated cos of pair {@code i} at {@code position} (scale included). */
    public float cos(int position, int i) {
        return Kernels.get(cos, (long) position * half + i);
    }

    /** The tabulated sin of pair {@code i} at {@code position} (scale included). */
    public float sin(int position, int i) {
        return Kernels.get(sin, (long) position * half + i);
    }

    /** Rotates {@code heads} consecutive heads of {@code dim} floats of {@code x} from float index {@code index}. */
    public void apply(MemorySegment x, long index, int heads, int position) {
        apply(x, index, heads, dim, position);
    }

    /**
     * Rotates the first {@code dim} floats of {@code heads} heads that start {@code headStride}
     * floats apart, the first at float index {@code index}.
     */
    public void apply(MemorySegment x, long index, int heads, int headStride, int position) {
        if (position < 0 || position >= maxPositions) {
            throw new IllegalArgumentException("position " + position + " outside [0, " + maxPositions + ")");
        }
        long table = (long) position * half;
        for (int h = 0; h < heads; h++) {
            long base = index + (long) h * headStride;
            for (int i = 0; i < half; i++) {
                float c = Kernels.get(cos, table + i);
                float s = Kernels.get(sin, table + i);
                long ia = interleaved ? base + 2L * i : base + i;
                long ib = interleaved ? ia + 1 : ia + half;
                float a = Kernels.get(x, ia);
                float b = Kernels.get(x, ib);
                Kernels.set(x, ia, a * c - b * s);
                Kernels.set(x, ib, b * c + a * s);
            }
        }
    }
}
