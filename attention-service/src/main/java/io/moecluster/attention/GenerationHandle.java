package io.moecluster.attention;

import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import io.opentelemetry.context.Context;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One request inside a {@link GenerationLoop}. {@link #cancel()} may be called from any thread;
 * everything else is the loop thread's.
 */
public final class GenerationHandle {
    private final GenerationLoop loop;
    final int[] prompt;
    final SamplingParams params;
    private final GenerationListener listener;
    private final AtomicBoolean cancelRequested = new AtomicBoolean();
    /** Set on the loop thread once the generator accepted it. */
    Sequence sequence;
    /** The request's trace context (its Run server span), or null without tracing. */
    Context traceContext;
    /** Loop thread only: the request has left the loop (finished, failed or cancelled). */
    private boolean done;

    GenerationHandle(GenerationLoop loop, int[] prompt, SamplingParams params, GenerationListener listener) {
        this.loop = loop;
        this.prompt = prompt;
        this.params = params;
        this.listener = listener;
    }

    /** Ends the request at the next step boundary and frees its KV cache; idempotent, never blocks. */
    public void cancel() {
        if (cancelRequested.compareAndSet(false, true)) {
            loop.requestCancel(this);
        }
    }

    public boolean isCancelRequested() {
        return cancelRequested.get();
    }

    boolean isDone() {
        return done;
    }

    /** Marks the request gone; returns false if it already was (so the loop releases its slot once). */
    boolean markDone() {
        if (done) {
            return false;
        }
        done = true;
        return true;
    }

    /**
     * The core sink the generator calls. A listener that throws (e.g. its gRPC call is gone) must
     * not break the step the other sequences share, so it is caught and the request cancelled.
     */
    TokenSink sink() {
        return new TokenSink() {
            @Override
            public void onToken(int token) {
                if (done || cancelRequested.get()) {
                    return;
                }
                try {
                    listener.onToken(token);
                } catch (RuntimeException e) {
                    cancel();
                }
            }

            @Override
            public void onFinish(FinishReason reason) {
                loop.finished(GenerationHandle.this);
                if (!cancelRequested.get()) {
                    try {
                        listener.onFinish(reason);
                    } catch (RuntimeException ignored) {
                        // The listener's call is gone; nothing left to tell.
                    }
                }
            }
        };
    }

    void fail(Throwable cause) {
        if (cancelRequested.get()) {
            return;
        }
        try {
            listener.onError(cause);
        } catch (RuntimeException ignored) {
            // As above: nobody left to tell.
        }
    }
}
