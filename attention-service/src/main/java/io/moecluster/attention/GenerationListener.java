package io.moecluster.attention;

import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.TokenLogprobs;

/**
 * What a {@link GenerationLoop} tells the owner of one request. Core's {@code TokenSink} has no
 * way to say "this sequence died"; a remote step can fail, so this adds {@link #onError}.
 *
 * <p>A request may ask for several completions of its prompt (n): the index-aware methods say
 * which; by default they call the single-completion ones, which is all a listener of n = 1 needs.
 *
 * <p>Called on the loop thread: implementations must not block. Exactly one of
 * {@link #onComplete} or {@link #onError} ends a request that was not cancelled; a cancelled one
 * hears nothing more.
 */
public interface GenerationListener {
    void onToken(int token);

    /** Generation ended normally: {@link FinishReason#STOP} or {@link FinishReason#LENGTH}. */
    void onFinish(FinishReason reason);

    /** The request was dropped: the step it was part of threw, its input was refused, or the loop closed. */
    void onError(Throwable cause);

    /**
     * Completion {@code index} generated {@code token}; {@code logprobs} (null unless asked for) is
     * reused at the next step. By default {@link #onToken(int)}.
     */
    default void onToken(int index, int token, TokenLogprobs logprobs) {
        onToken(token);
    }

    /** Completion {@code index} ended normally. By default {@link #onFinish(FinishReason)}. */
    default void onFinish(int index, FinishReason reason) {
        onFinish(reason);
    }

    /** Every completion of the request has finished (after the last {@link #onFinish(int, FinishReason)}). */
    default void onComplete() {
    }
}
