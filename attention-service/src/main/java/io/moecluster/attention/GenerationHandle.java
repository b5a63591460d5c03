package io.moecluster.attention;

import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.sampling.TokenLogprobs;
import io.opentelemetry.context.Context;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One request inside a {@link GenerationLoop}: its n sequences (one prefill, see
 * {@link io.moecluster.core.engine.BatchGenerator#submitGroup}). {@link #cancel()} may be called
 * from any thread; everything else is the loop thread's.
 */
public final class GenerationHandle {
    private final GenerationLoop loop;
    final int[] prompt;
    final SamplingParams params;
    final int n;
    private final GenerationListener listener;
    private final AtomicBoolean cancelRequested = new AtomicBoolean();
    /** Its place in the loop's capacity was given back (by the loop, or by a cancel on any thread). */
    private final AtomicBoolean released = new AtomicBoolean();
    /** Set on the loop thread once the generator accepted it: the leader, and all n. */
    Sequence sequence;
    Sequence[] sequences;
    /** The request's trace context (its Run server span), or null without tracing. */
    Context traceContext;
    /** Loop thread only: the request has left the loop (finished, failed or cancelled). */
    private boolean done;
    /** Loop thread only: sequences not yet finished. */
    private int live;

    GenerationHandle(GenerationLoop loop, int[] prompt, SamplingParams params, int n, GenerationListener listener) {
        this.loop = loop;
        this.prompt = prompt;
        this.params = params;
        this.n = n;
        this.live = n;
        this.listener = listener;
    }

    /** Ends the request at the next step boundary and frees its KV caches; idempotent, never blocks. */
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

    /** True the first time only: the caller gives the request's place back. */
    boolean release() {
        return released.compareAndSet(false, true);
    }

    /** Marks the request gone; returns false if it already was (so its caller is told once). */
    boolean markDone() {
        if (done) {
            return false;
        }
        done = true;
        return true;
    }

    /** The core sinks the generator calls, one per completion. */
    TokenSink[] sinks() {
        TokenSink[] sinks = new TokenSink[n];
        for (int i = 0; i < n; i++) {
            sinks[i] = sink(i);
        }
        return sinks;
    }

    /**
     * A listener that throws (e.g. its gRPC call is gone) must not break the step the other
     * sequences share, so it is caught and the request cancelled.
     */
    private TokenSink sink(int index) {
        return new TokenSink() {
            @Override
            public void onToken(int token) {
                onToken(token, null);
            }

            @Override
            public void onToken(int token, TokenLogprobs logprobs) {
                if (done || cancelRequested.get()) {
                    return;
                }
                try {
                    listener.onToken(index, token, logprobs);
                } catch (RuntimeException e) {
                    cancel();
                }
            }

            @Override
            public void onFinish(FinishReason reason) {
                boolean last = --live == 0;
                if (last) {
                    loop.finished(GenerationHandle.this);
                }
                if (!cancelRequested.get()) {
                    try {
                        listener.onFinish(index, reason);
                        if (last) {
                            listener.onComplete();
                        }
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
