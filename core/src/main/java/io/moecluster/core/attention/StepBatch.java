package io.moecluster.core.attention;

import java.util.Arrays;

/**
 * The tokens of one forward step: prefill chunks and decode tokens of any number of sequences,
 * each with its position and KV cache. Arrays are sized once; {@link #clear()} reuses them.
 *
 * <p>Each token says whether it is a prompt token (prefill) or a generated token fed back
 * (decode): an attention kind may compute the two differently (multi-head latent attention
 * expands its keys for prefill and folds them into the query for decode). The choice depends on
 * the token alone, never on how a prompt was split into chunks or what else shares the step, so
 * every mode computes a token the same way.
 */
public final class StepBatch {
    private final int capacity;
    private final int[] tokens;
    private final int[] positions;
    private final KvCache[] caches;
    private final boolean[] wantLogits;
    private final boolean[] decode;
    private final int[] logitRow;
    private int size;
    private int logitRows;

    public StepBatch(int capacity) {
        this.capacity = capacity;
        this.tokens = new int[capacity];
        this.positions = new int[capacity];
        this.caches = new KvCache[capacity];
        this.wantLogits = new boolean[capacity];
        this.decode = new boolean[capacity];
        this.logitRow = new int[capacity];
    }

    public void clear() {
        Arrays.fill(caches, 0, size, null);
        size = 0;
        logitRows = 0;
    }

    /** Adds a prompt token; returns the row its logits will land in, or -1 if none were asked for. */
    public int add(int token, int position, KvCache cache, boolean logits) {
        return add(token, position, cache, logits, false);
    }

    /**
     * Adds a token, a generated one fed back when {@code decode}, else a prompt token; returns the
     * row its logits will land in, or -1 if none were asked for.
     */
    public int add(int token, int position, KvCache cache, boolean logits, boolean decode) {
        if (size == capacity) {
            throw new IllegalStateException("step batch is full (" + capacity + " tokens)");
        }
        if (position >= cache.capacity()) {
            throw new IllegalStateException("position " + position + " exceeds the sequence's KV capacity "
                    + cache.capacity());
        }
        tokens[size] = token;
        positions[size] = position;
        caches[size] = cache;
        wantLogits[size] = logits;
        this.decode[size] = decode;
        logitRow[size] = logits ? logitRows++ : -1;
        size++;
        return logitRow[size - 1];
    }

    public int size() {
        return size;
    }

    public int capacity() {
        return capacity;
    }

    public int remaining() {
        return capacity - size;
    }

    public int logitRows() {
        return logitRows;
    }

    public int token(int i) {
        return tokens[i];
    }

    public int position(int i) {
        return positions[i];
    }

    public KvCache cache(int i) {
        return caches[i];
    }

    /** Whether token {@code i} is a generated token fed back (decode) rather than a prompt token. */
    public boolean isDecode(int i) {
        return decode[i];
    }

    public boolean wantsLogits(int i) {
        return wantLogits[i];
    }

    public int logitRow(int i) {
        return logitRow[i];
    }
}
