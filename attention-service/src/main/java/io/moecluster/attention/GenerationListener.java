package io.moecluster.attention;

import io.moecluster.core.sampling.FinishReason;

/**
 * What a {@link GenerationLoop} tells the owner of one request. Core's {@code TokenSink} has no
 * way to say "this sequence died"; a remote step can fail, so this adds {@link #onError}.
 *
 * <p>Called on the loop thread: implementations must not block. Exactly one of
 * {@link #onFinish} or {@link #onError} ends a request that was not cancelled; a cancelled one hears
 * nothing more.
 */
public interface GenerationListener {
    void onToken(int token);

    /** Generation ended normally: {@link FinishReason#STOP} or {@link FinishReason#LENGTH}. */
    void onFinish(FinishReason reason);

    /** The request was dropped: the step it was part of threw, its input was refused, or the loop closed. */
    void onError(Throwable cause);
}
