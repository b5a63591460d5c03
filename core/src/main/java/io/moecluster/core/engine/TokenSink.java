package io.moecluster.core.engine;

import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.TokenLogprobs;

/** Receives a sequence's tokens as they are sampled; called on the generator's thread, so it must not block. */
public interface TokenSink {
    void onToken(int token);

    /**
     * A token with its log-probabilities ({@code null} unless the sequence's params ask for them);
     * {@code logprobs} is reused at the next step, so copy what you keep. By default, {@link #onToken(int)}.
     */
    default void onToken(int token, TokenLogprobs logprobs) {
        onToken(token);
    }

    void onFinish(FinishReason reason);

    /** A sink that ignores everything (benchmarks read the sequence afterwards). */
    TokenSink NONE = new TokenSink() {
        @Override
        public void onToken(int token) {
        }

        @Override
        public void onFinish(FinishReason reason) {
        }
    };
}
