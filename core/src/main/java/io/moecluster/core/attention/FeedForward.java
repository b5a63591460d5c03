package io.moecluster.core.attention;

import java.lang.foreign.MemorySegment;

/**
 * The feed-forward half of a decoder layer, seen from the attention side: takes the
 * post-attention-normalised hidden states of a step's tokens and writes the block's output
 * (without the residual). In one process this runs the experts in place
 * ({@link LocalFeedForward}); in a cluster it dispatches token rows to expert services.
 */
public interface FeedForward {
    /**
     * @param input {@code [tokens, hidden]} f32
     * @param output {@code [tokens, hidden]} f32, fully overwritten
     */
    void forward(int layer, MemorySegment input, int tokens, MemorySegment output);
}
