package io.moecluster.core.moe;

import java.lang.foreign.MemorySegment;

/**
 * Carries one layer's token rows to the experts and their outputs back. The MoE block calls
 * {@link #dispatch} once per expert with routed tokens, then {@link #awaitAll} once; the outputs
 * are only read after it returns, so a dispatcher may run experts remotely and in parallel.
 */
public interface ExpertDispatcher extends AutoCloseable {
    /**
     * Runs expert {@code expert} of {@code layer} on rows {@code [row, row + count)} of {@code rows}
     * ({@code [*, hidden]} f32), each output scaled by its routing weight, the f32 at float index
     * {@code row + i} of {@code weights}; the results land in the same rows of {@code out} once
     * {@link #awaitAll} returns. Nothing passed in may change before then.
     */
    void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                  MemorySegment out);

    /**
     * Waits for every dispatch since the last call. Throws {@link ExpertUnavailableException} when an
     * expert cannot answer (no live host, an error reply, or a timeout); nothing is left pending then.
     */
    void awaitAll();

    /**
     * Independent groups of dispatches this dispatcher can have in flight at once, each with its
     * own {@link #awaitAll(int)}: 2 lets the MoE block start one micro-batch's layer while another's
     * is out (the ping-pong pipeline); 1 (the default) where the experts run in the caller's thread.
     */
    default int groups() {
        return 1;
    }

    /** {@link #dispatch(int, int, MemorySegment, int, int, MemorySegment, MemorySegment)} into {@code group}. */
    default void dispatch(int group, int layer, int expert, MemorySegment rows, int row, int count,
                          MemorySegment weights, MemorySegment out) {
        requireGroup(group);
        dispatch(layer, expert, rows, row, count, weights, out);
    }

    /** {@link #awaitAll()} for the dispatches of {@code group} only; the other group's stay in flight. */
    default void awaitAll(int group) {
        requireGroup(group);
        awaitAll();
    }

    /**
     * Forgets what {@code group} still has in flight (a layer whose step failed before it was
     * awaited): its late answers are dropped. Nothing happens when it has nothing in flight.
     */
    default void discard(int group) {
    }

    private void requireGroup(int group) {
        if (group < 0 || group >= groups()) {
            throw new IllegalArgumentException("dispatch group " + group + " of " + groups());
        }
    }

    @Override
    default void close() {
    }
}
