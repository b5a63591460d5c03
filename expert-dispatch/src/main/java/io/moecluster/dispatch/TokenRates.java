package io.moecluster.dispatch;

import io.moecluster.core.moe.MoeBlock;
import io.moecluster.dispatch.placement.ExpertPlacement;
import io.moecluster.dispatch.placement.ExpertReplica;
import java.time.Duration;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Tokens per second routed to each expert and to each expert of each replica, over a sliding
 * window: the counters are sampled twice a second off the data path and a rate is the difference
 * between the newest and the oldest sample of the window.
 */
public final class TokenRates implements AutoCloseable {
    private static final long SAMPLE_MILLIS = 500;

    private record Sample(long nanos, long[] experts, Map<ExpertReplica, long[]> replicas) {
    }

    private final MoeBlock router;
    private final ExpertPlacement placement;
    private final Sample[] ring;
    private int next;
    private int filled;
    private final ScheduledExecutorService sampler;

    public TokenRates(MoeBlock router, ExpertPlacement placement, Duration window) {
        this.router = router;
        this.placement = placement;
        this.ring = new Sample[(int) Math.max(2, window.toMillis() / SAMPLE_MILLIS + 1)];
        this.sampler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "token-rates");
            t.setDaemon(true);
            return t;
        });
        sample();
        sampler.scheduleAtFixedRate(this::sample, SAMPLE_MILLIS, SAMPLE_MILLIS, TimeUnit.MILLISECONDS);
    }

    private void sample() {
        long[] experts = new long[router.expertSlots()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = router.tokensRouted(e);
        }
        Map<ExpertReplica, long[]> replicas = new IdentityHashMap<>();
        for (ExpertReplica r : placement.replicas()) {
            long[] counts = new long[experts.length];
            for (int e = 0; e < counts.length; e++) {
                counts[e] = r.tokensRouted(e);
            }
            replicas.put(r, counts);
        }
        synchronized (this) {
            ring[next] = new Sample(System.nanoTime(), experts, replicas);
            next = (next + 1) % ring.length;
            filled = Math.min(filled + 1, ring.length);
        }
    }

    private synchronized Sample newest() {
        return ring[(next - 1 + ring.length) % ring.length];
    }

    private synchronized Sample oldest() {
        return ring[filled < ring.length ? 0 : next];
    }

    /** Tokens per second routed to expert {@code e}, all replicas and layers; 0 before two samples. */
    public double expert(int e) {
        Sample a = oldest();
        Sample b = newest();
        return rate(a.experts()[e], b.experts()[e], a, b);
    }

    /** Tokens per second of expert {@code e} routed to replica {@code r}; a replica that joined in the window counts from 0. */
    public double replica(ExpertReplica r, int e) {
        Sample a = oldest();
        Sample b = newest();
        long[] to = b.replicas().get(r);
        if (to == null) {
            return 0;
        }
        long[] from = a.replicas().get(r);
        return rate(from == null ? 0 : from[e], to[e], a, b);
    }

    private static double rate(long from, long to, Sample a, Sample b) {
        long dt = b.nanos() - a.nanos();
        return dt <= 0 ? 0 : (to - from) * 1e9 / dt;
    }

    @Override
    public void close() {
        sampler.shutdownNow();
    }
}
