package io.moecluster.core.engine;

import io.moecluster.core.sampling.FinishReason;

/** Receives a sequence's tokens as they are sampled; called on the generator's thread, so it must not block. */
public interface TokenSink {
    void onToken(int token);

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
