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

    @Override
    default void close() {
    }
}
