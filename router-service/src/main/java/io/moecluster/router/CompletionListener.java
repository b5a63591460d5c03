package io.moecluster.router;

import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.TokenLogprobs;
import io.moecluster.proto.v1.Usage;

/**
 * Where a {@link GenerationService} delivers a request's completions, for any API: per token,
 * per completion's end, then once for the request. Exactly one of {@link #onFinished} and
 * {@link #onFailed} ends a request that the client did not cancel. Calls are serialized (one at a
 * time), from the attention channel's threads, or from the caller's thread for a request refused
 * at once (admission).
 */
public interface CompletionListener {
    /**
     * Completion {@code index} generated {@code tokenId}, which completes {@code text} (possibly
     * empty). {@code logprobs} is null unless the request asked for them.
     */
    void onToken(int index, int tokenId, String text, TokenLogprobs logprobs);

    /**
     * Text of completion {@code index} held back until its end (an incomplete character, or what
     * looked like the start of a stop sequence) that belongs to no new token; just before its
     * {@link #onChoiceFinished}.
     */
    void onTrailingText(int index, String text);

    /** Completion {@code index} ended; {@code usage} counts its tokens (and the prompt). */
    void onChoiceFinished(int index, FinishReason reason, Usage usage);

    /** Every completion ended; {@code usage} counts all their tokens. */
    void onFinished(Usage usage);

    void onFailed(GenerationError error);
}
