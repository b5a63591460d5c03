package io.moecluster.dispatch.placement;

import io.moecluster.discovery.ClusterSpec;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * One expert service as the router sees it: where it reads, how many tokens it has been sent and
 * not yet answered (the replica choice is least outstanding tokens), how many it has been routed
 * per expert, and whether it is in quarantine after a failure.
 *
 * <p>The same object lives as long as the service keeps the same definition in the registry, so
 * its counters survive placement updates. Counters are atomics: a status call reads them from
 * another thread while the dispatcher updates them.
 */
public final class ExpertReplica {
    /**
     * First quarantine after a failure; doubles per consecutive failure up to {@link #MAX_QUARANTINE_NANOS}.
     * Longer than the media driver's client liveness timeout (5 s), so a killed replica is seen
     * disconnected, and skipped, before it would be tried again.
     */
    static final long FIRST_QUARANTINE_NANOS = 10_000_000_000L;
    static final long MAX_QUARANTINE_NANOS = 60_000_000_000L;

    private final ClusterSpec.Expert service;
    private final String channel;
    private final AtomicLong outstandingTokens = new AtomicLong();
    private final AtomicLongArray tokensRouted;
    private final AtomicLong failures = new AtomicLong();
    private volatile long quarantinedUntil;
    private volatile int consecutiveFailures;
    private volatile String lastFailure;

    ExpertReplica(ClusterSpec.Expert service, String channel, int expertSlots) {
        this.service = service;
        this.channel = channel;
        this.tokensRouted = new AtomicLongArray(expertSlots);
    }

    public String id() {
        return service.id();
    }

    public ClusterSpec.Expert service() {
        return service;
    }

    /** The Aeron channel it reads (its own, or the cluster-wide one). */
    public String channel() {
        return channel;
    }

    public int streamId() {
        return service.streamId();
    }

    public long outstandingTokens() {
        return outstandingTokens.get();
    }

    /** Tokens of expert {@code expert} sent to this replica since it joined, all layers. */
    public long tokensRouted(int expert) {
        return expert < tokensRouted.length() ? tokensRouted.get(expert) : 0;
    }

    public long tokensRouted() {
        long n = 0;
        for (int e = 0; e < tokensRouted.length(); e++) {
            n += tokensRouted.get(e);
        }
        return n;
    }

    public long failures() {
        return failures.get();
    }

    public String lastFailure() {
        return lastFailure;
    }

    public boolean quarantined(long nowNanos) {
        return consecutiveFailures > 0 && nowNanos - quarantinedUntil < 0;
    }

    public long quarantinedUntil() {
        return quarantinedUntil;
    }

    /** A batch of {@code tokens} rows of expert {@code expert} was sent here. */
    public void sent(int expert, int tokens) {
        outstandingTokens.addAndGet(tokens);
        tokensRouted.addAndGet(expert, tokens);
    }

    /** A batch sent here was answered, given up on, or moved to another replica. */
    public void settled(int tokens) {
        outstandingTokens.addAndGet(-tokens);
    }

    /** It answered: whatever quarantine it earned is over. */
    public void answered() {
        if (consecutiveFailures != 0) {
            consecutiveFailures = 0;
        }
    }

    /** It failed a batch: out of the choice for a while, longer for each failure in a row. */
    public void failed(String why, long nowNanos) {
        failures.incrementAndGet();
        lastFailure = why;
        int n = Math.min(consecutiveFailures + 1, 16);
        consecutiveFailures = n;
        long q = Math.min(MAX_QUARANTINE_NANOS, FIRST_QUARANTINE_NANOS << Math.min(n - 1, 4));
        quarantinedUntil = nowNanos + q;
    }

    @Override
    public String toString() {
        return "expert service " + service.id() + " (stream " + service.streamId() + ")";
    }
}
