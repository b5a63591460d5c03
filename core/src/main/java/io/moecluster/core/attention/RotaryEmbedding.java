package io.moecluster.core.attention;

import io.moecluster.core.kernels.Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * RoPE in the rotate-half convention of transformers (Llama/Mixtral/Qwen2): dimension {@code i}
 * pairs with {@code i + d/2}. Angles are computed in double and tabulated once per position, so
 * applying RoPE costs two loads and four multiplies per pair.
 */
public final class RotaryEmbedding {
    private final int headDim;
    private final int half;
    private final int maxPositions;
    private final MemorySegment cos;
    private final MemorySegment sin;

    public RotaryEmbedding(int headDim, double theta, int maxPositions, Arena arena) {
        this.headDim = headDim;
        this.half = headDim / 2;
        this.maxPositions = maxPositions;
        this.cos = arena.allocate((long) maxPositions * half * 4, 64);
        this.sin = arena.allocate((long) maxPositions * half * 4, 64);
        for (int i = 0; i < half; i++) {
            double invFreq = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
            for (int p = 0; p < maxPositions; p++) {
                double angle = p * invFreq;
                Kernels.set(cos, (long) p * half + i, (float) Math.cos(angle));
                Kernels.set(sin, (long) p * half + i, (float) Math.sin(angle));
            }
        }
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** Rotates {@code heads} consecutive heads of {@code x} starting at float index {@code index}. */
    public void apply(MemorySegment x, long index, int heads, int position) {
        if (position < 0 || position >= maxPositions) {
            throw new IllegalArgumentException("position " + position + " outside [0, " + maxPositions + ")");
        }
        long table = (long) position * half;
        for (int h = 0; h < heads; h++) {
            long base = index + (long) h * headDim;
            for (int i = 0; i < half; i++) {
                float c = Kernels.get(cos, table + i);
                float s = Kernels.get(sin, table + i);
                float a = Kernels.get(x, base + i);
                float b = Kernels.get(x, base + i + half);
                Kernels.set(x, base + i, a * c - b * s);
                Kernels.set(x, base + i + half, b * c + a * s);
            }
        }
    }
}
