package io.moecluster.core.attention;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The keys and values of one sequence, all layers, f32, off-heap: {@code [layer][position][kv_dim]}.
 * Its capacity is fixed when the sequence is admitted (prompt plus the tokens it may generate),
 * so a step never allocates and a full cache is an error rather than a reallocation.
 */
public final class KvCache implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final int layers;
    private final int capacity;
    private final int kvDim;
    private final MemorySegment keys;
    private final MemorySegment values;

    public KvCache(int layers, int capacity, int kvDim) {
        if (capacity < 1) {
            throw new IllegalArgumentException("KV cache capacity must be >= 1, got " + capacity);
        }
        this.layers = layers;
        this.capacity = capacity;
        this.kvDim = kvDim;
        long floats = (long) layers * capacity * kvDim;
        this.keys = arena.allocate(floats * 4, 64);
        this.values = arena.allocate(floats * 4, 64);
    }

    public int capacity() {
        return capacity;
    }

    public long byteSize() {
        return keys.byteSize() + values.byteSize();
    }

    public MemorySegment keys() {
        return keys;
    }

    public MemorySegment values() {
        return values;
    }

    /** Float index of {@code (layer, position)}'s row in {@link #keys()} and {@link #values()}. */
    public long index(int layer, int position) {
        return ((long) layer * capacity + position) * kvDim;
    }

    /**
     * Copies positions {@code [0, positions)} of every layer into {@code target} (a cache of the
     * same model): how a sequence that shares this one's prompt starts without prefilling it again.
     */
    public void copyPrefixTo(KvCache target, int positions) {
        if (target.layers != layers || target.kvDim != kvDim) {
            throw new IllegalArgumentException("KV caches differ in shape: " + layers + " layers x " + kvDim
                    + " vs " + target.layers + " x " + target.kvDim);
        }
        if (positions < 0 || positions > capacity || positions > target.capacity) {
            throw new IllegalArgumentException("cannot copy " + positions + " positions from a cache of " + capacity
                    + " into one of " + target.capacity);
        }
        long bytes = (long) positions * kvDim * 4;
        for (int layer = 0; layer < layers; layer++) {
            long from = index(layer, 0) * 4;
            long to = target.index(layer, 0) * 4;
            MemorySegment.copy(keys, from, target.keys, to, bytes);
            MemorySegment.copy(values, from, target.values, to, bytes);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
