package io.moecluster.core.backend;

import io.moecluster.core.model.FfnWeights;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * Several FFN runs handed to a kernel together ({@link FfnKernel#runBatch}): the experts of one MoE
 * layer, so that a device backend can run all of them in one grouped GEMM per projection instead
 * of one launch sequence per expert. Each entry is what one {@link FfnKernel#run} call takes.
 * Reused from batch to batch: {@link #clear()} empties it, nothing is allocated per batch.
 */
public final class FfnBatch {
    private final FfnWeights[] weights;
    private final MemorySegment[] x;
    private final int[] xRow;
    private final int[] rows;
    private final MemorySegment[] scales;
    private final long[] scaleIndex;
    private final MemorySegment[] out;
    private final int[] outRow;
    private int size;

    /** @param capacity the most entries (one per expert of a layer, the shared one included) */
    public FfnBatch(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("an FFN batch holds at least one entry, got " + capacity);
        }
        weights = new FfnWeights[capacity];
        x = new MemorySegment[capacity];
        xRow = new int[capacity];
        rows = new int[capacity];
        scales = new MemorySegment[capacity];
        scaleIndex = new long[capacity];
        out = new MemorySegment[capacity];
        outRow = new int[capacity];
    }

    /** Adds one run, with the arguments of {@link FfnKernel#run}. */
    public void add(FfnWeights w, MemorySegment x, int xRow, int rows, MemorySegment scales, long scaleIndex,
                    MemorySegment out, int outRow) {
        if (size == weights.length) {
            throw new IllegalStateException("FFN batch full (" + size + " entries)");
        }
        if (rows < 0) {
            throw new IllegalArgumentException("negative row count " + rows);
        }
        int i = size++;
        this.weights[i] = Objects.requireNonNull(w, "weights");
        this.x[i] = x;
        this.xRow[i] = xRow;
        this.rows[i] = rows;
        this.scales[i] = scales;
        this.scaleIndex[i] = scaleIndex;
        this.out[i] = out;
        this.outRow[i] = outRow;
    }

    /** Forgets every entry (and the segments it held). */
    public void clear() {
        Arrays.fill(weights, 0, size, null);
        Arrays.fill(x, 0, size, null);
        Arrays.fill(scales, 0, size, null);
        Arrays.fill(out, 0, size, null);
        size = 0;
    }

    public int size() {
        return size;
    }

    public int capacity() {
        return weights.length;
    }

    public FfnWeights weights(int i) {
        return weights[check(i)];
    }

    public MemorySegment x(int i) {
        return x[check(i)];
    }

    public int xRow(int i) {
        return xRow[check(i)];
    }

    public int rows(int i) {
        return rows[check(i)];
    }

    /** The entry's scales, or null for none. */
    public MemorySegment scales(int i) {
        return scales[check(i)];
    }

    public long scaleIndex(int i) {
        return scaleIndex[check(i)];
    }

    public MemorySegment out(int i) {
        return out[check(i)];
    }

    public int outRow(int i) {
        return outRow[check(i)];
    }

    /** Rows over all entries. */
    public long totalRows() {
        long n = 0;
        for (int i = 0; i < size; i++) {
            n += rows[i];
        }
        return n;
    }

    private int check(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("entry " + i + " of " + size);
        }
        return i;
    }
}
