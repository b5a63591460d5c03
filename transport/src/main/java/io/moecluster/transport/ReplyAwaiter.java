package io.moecluster.transport;

import org.agrona.concurrent.IdleStrategy;

/**
 * The send-and-wait half of the data plane's client side: polls a reply subscription until the
 * caller's answers are in, a deadline passes, or the caller gives up, idling by its own strategy
 * between empty polls. The MoE dispatcher (many expert batches per layer) and the attention side's
 * router client (one whole-layer request) both wait through this.
 *
 * <p>The caller implements {@link Progress}, so waiting allocates nothing. Not thread-safe: the
 * thread that sent the requests waits for them.
 */
public final class ReplyAwaiter {
    /** What is being waited for. Answers arrive through the poller's handlers, on the waiting thread. */
    public interface Progress {
        /** True once every answer is in (or the wait has nothing left to wait for). */
        boolean done();

        /**
         * Called after a poll that read nothing: the place to notice a lost or slow peer and send a
         * request again elsewhere. The default does nothing.
         */
        default void onQuiet(long nowNanos) {
        }
    }

    private final MessagePoller poller;
    private final IdleStrategy idle;
    private final int fragmentLimit;

    /**
     * @param idle how to wait between empty polls (one instance per awaiter: strategies keep state)
     * @param fragmentLimit fragments read per poll
     */
    public ReplyAwaiter(MessagePoller poller, IdleStrategy idle, int fragmentLimit) {
        if (fragmentLimit < 1) {
            throw new IllegalArgumentException("fragmentLimit must be >= 1, got " + fragmentLimit);
        }
        this.poller = poller;
        this.idle = idle;
        this.fragmentLimit = fragmentLimit;
    }

    /**
     * Polls until {@code progress.done()} or {@code deadlineNanos} (a {@link System#nanoTime()}
     * value) passes.
     *
     * @return true when done, false at the deadline with answers still missing
     */
    public boolean await(Progress progress, long deadlineNanos) {
        idle.reset();
        while (!progress.done()) {
            int work = poller.poll(fragmentLimit);
            if (progress.done()) {
                return true;
            }
            long now = System.nanoTime();
            if (work == 0) {
                progress.onQuiet(now);
                if (progress.done()) {
                    return true;
                }
            }
            if (now - deadlineNanos > 0) {
                return false;
            }
            idle.idle(work);
        }
        return true;
    }

    public MessagePoller poller() {
        return poller;
    }
}
