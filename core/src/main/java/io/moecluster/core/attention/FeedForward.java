package io.moecluster.core.attention;

import java.lang.foreign.MemorySegment;

/**
 * The feed-forward half of a decoder layer, seen from the attention side: takes the
 * post-attention-normalised hidden states of a step's tokens and writes the block's output
 * (without the residual). In one process this runs the experts in place
 * ({@link LocalFeedForward}); in a cluster it dispatches token rows to expert services.
 */
public interface FeedForward {
    /** Micro-batches that may be in flight at once through {@link #submit}/{@link #await}. */
    int MAX_IN_FLIGHT = 2;

    /**
     * @param input {@code [tokens, hidden]} f32
     * @param output {@code [tokens, hidden]} f32, fully overwritten
     */
    void forward(int layer, MemorySegment input, int tokens, MemorySegment output);

    /**
     * Starts {@link #forward} for micro-batch {@code slot} (0 or 1); {@code output} is complete
     * once {@link #await await(slot)} returns, and {@code input} may be reused as soon as this
     * returns. Each slot has at most one layer in flight. The default computes now, so a caller
     * that alternates two micro-batches gets the same numbers either way; only an implementation
     * whose work runs elsewhere ({@link #overlaps()}) lets the caller compute meanwhile.
     */
    default void submit(int slot, int layer, MemorySegment input, int tokens, MemorySegment output) {
        forward(layer, input, tokens, output);
    }

    /**
     * Waits until the layer last submitted for {@code slot} is in {@code output}; fails as
     * {@link #forward} would. A slot whose submit failed, or that has nothing in flight, returns at once.
     */
    default void await(int slot) {
    }

    /**
     * Whether {@link #submit} returns before the work is done (it runs in other processes), so
     * that splitting a step into micro-batches overlaps attention with feed-forward.
     */
    default boolean overlaps() {
        return false;
    }
}
