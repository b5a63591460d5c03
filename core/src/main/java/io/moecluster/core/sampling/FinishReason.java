package io.moecluster.core.sampling;

import java.util.Locale;

/** Why a generation ended; the names follow the OpenAI API's {@code finish_reason}. */
public enum FinishReason {
    /** The model produced an EOS token or one of the request's stop tokens. */
    STOP,
    /** {@link SamplingParams#maxTokens()} tokens were generated (or the context is full). */
    LENGTH;

    /** The value of {@code finish_reason} in OpenAI-style responses. */
    public String apiName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
