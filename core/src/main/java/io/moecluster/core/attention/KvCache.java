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

    @Override
    public void close() {
        arena.close();
    }
}
