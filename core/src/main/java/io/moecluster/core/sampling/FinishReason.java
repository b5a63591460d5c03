package io.moecluster.core.sampling;

import java.util.Locale;

/** Why a generation ended; the names follow the OpenAI API's {@code finish_reason}. */
public enum FinishReason {
    /** The model produced an EOS token or one of the request's stop tokens. */
    STOP,
    /** {@link SamplingParams#maxTokens()} tokens were generated (or the context is full). */
    LENGTH,
    /**
     * The caller ended it ({@link io.moecluster.core.engine.BatchGenerator#cancel}) or a step failed
     * ({@link io.moecluster.core.engine.BatchGenerator#abortRunning}); never passed to a TokenSink.
     */
    CANCELLED;

    /** The value of {@code finish_reason} in OpenAI-style responses. */
    public String apiName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
