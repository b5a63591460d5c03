package io.moecluster.router;

import java.util.concurrent.Semaphore;

/**
 * Bounds the requests a router has in flight. Over the limit a request is refused at once
 * (RESOURCE_EXHAUSTED) rather than queued: clients retry with backoff, and the router never holds
 * an unbounded backlog.
 */
public final class AdmissionControl {
    private final int maxActive;
    private final Semaphore permits;

    public AdmissionControl(int maxActive) {
        if (maxActive < 1) {
            throw new IllegalArgumentException("max-active-requests must be >= 1, got " + maxActive);
        }
        this.maxActive = maxActive;
        this.permits = new Semaphore(maxActive);
    }

    /** Takes a slot if one is free; the caller must {@link #release()} it exactly once. */
    public boolean tryAcquire() {
        return permits.tryAcquire();
    }

    public void release() {
        permits.release();
    }

    public int active() {
        return maxActive - permits.availablePermits();
    }

    public int maxActive() {
        return maxActive;
    }
}
