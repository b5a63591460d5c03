package io.moecluster.core.attention;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The attention cache of one sequence, all layers, f32, off-heap, in planes of
 * {@code [layer][position][width]} whose widths the attention kind chooses
 * ({@link AttentionKind#newCache}): grouped-query attention keeps keys and values
 * ({@code kv_heads x head_dim} each), multi-head latent attention the normalised latent
 * ({@code kv_lora_rank}) and the shared rope key ({@code qk_rope_head_dim}). Its capacity is fixed
 * when the sequence is admitted (prompt plus the tokens it may generate), so a step never
 * allocates and a full cache is an error rather than a reallocation.
 */
public final class KvCache implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final int layers;
    private final int capacity;
    private final int[] widths;
    private final MemorySegment[] planes;

    /** A cache of {@code widths.length} planes, plane {@code p} holding {@code widths[p]} floats per position and layer. */
    public KvCache(int layers, int capacity, int... widths) {
        if (capacity < 1) {
            throw new IllegalArgumentException("KV cache capacity must be >= 1, got " + capacity);
        }
        if (widths.length == 0) {
            throw new IllegalArgumentException("a KV cache needs at least one plane");
        }
        this.layers = layers;
        this.capacity = capacity;
        this.widths = widths.clone();
        this.planes = new MemorySegment[widths.length];
        for (int p = 0; p < widths.length; p++) {
            planes[p] = arena.allocate((long) layers * capacity * widths[p] * 4, 64);
        }
    }

    public int capacity() {
        return capacity;
    }

    public int layers() {
        return layers;
    }

    public long byteSize() {
        long bytes = 0;
        for (MemorySegment p : planes) {
            bytes += p.byteSize();
        }
        return bytes;
    }

    /** Floats stored per position and layer, all planes. */
    public int floatsPerToken() {
        int n = 0;
        for (int w : widths) {
            n += w;
        }
        return n;
    }

    public MemorySegment plane(int plane) {
        return planes[plane];
    }

    public int width(int plane) {
        return widths[plane];
    }

    /** Float index of {@code (layer, position)}'s row in {@link #plane(int) plane(plane)}. */
    public long index(int plane, int layer, int position) {
        return ((long) layer * capacity + position) * widths[plane];
    }

    /** The row number of {@code (layer, position)} in a plane seen as a {@code [layers x capacity, width]} matrix. */
    public int row(int layer, int position) {
        return layer * capacity + position;
    }

    /**
     * Copies positions {@code [0, positions)} of every layer into {@code target} (a cache of the
     * same model): how a sequence that shares this one's prompt starts without prefilling it again.
     */
    public void copyPrefixTo(KvCache target, int positions) {
        if (target.layers != layers || !Arrays.equals(target.widths, widths)) {
            throw new IllegalArgumentException("KV caches differ in shape: " + layers + " layers x "
                    + Arrays.toString(widths) + " vs " + target.layers + " x "
                    + Arrays.toString(target.widths));
        }
        if (positions < 0 || positions > capacity || positions > target.capacity) {
            throw new IllegalArgumentException("cannot copy " + positions + " positions from a cache of " + capacity
                    + " into one of " + target.capacity);
        }
        for (int p = 0; p < planes.length; p++) {
            long bytes = (long) positions * widths[p] * 4;
            for (int layer = 0; layer < layers; layer++) {
                MemorySegment.copy(planes[p], index(p, layer, 0) * 4, target.planes[p], target.index(p, layer, 0) * 4,
                        bytes);
            }
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
