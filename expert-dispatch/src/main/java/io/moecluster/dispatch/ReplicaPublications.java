package io.moecluster.dispatch;

import io.aeron.Aeron;
import io.aeron.Publication;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.dispatch.placement.ReplicaChoice;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.TokenBatchWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One TokenBatch publication per expert replica, opened when the replica joins the placement (so
 * it is connected by the time it is chosen) and closed when it leaves. It also says whether a
 * replica is there: its publication has a subscriber ({@link #connected}), and when it has had
 * none for longer than a new publication needs to connect, the replica is {@link #gone} and is not
 * waited for.
 */
final class ReplicaPublications implements ReplicaChoice.Links, AutoCloseable {
    /**
     * How long a publication may be without a subscriber before its replica counts as gone: a new
     * publication connects within milliseconds on IPC, within a few round trips over UDP.
     */
    static final long CONNECT_GRACE_NANOS = 1_000_000_000L;

    private final Aeron aeron;
    private final Duration deadline;
    private final DataPlaneAuth auth;
    // Concurrent: the status and metrics threads read the links while the dispatcher uses them.
    private final Map<ExpertReplica, Link> links = new ConcurrentHashMap<>();

    /** A replica's publication and when it last had a subscriber. */
    private static final class Link {
        final TokenBatchWriter writer;
        volatile long lastConnectedNanos = System.nanoTime();

        Link(TokenBatchWriter writer) {
            this.writer = writer;
        }

        boolean connected() {
            boolean c = writer.publisher().publication().isConnected();
            if (c) {
                lastConnectedNanos = System.nanoTime();
            }
            return c;
        }
    }

    ReplicaPublications(Aeron aeron, Duration deadline, DataPlaneAuth auth) {
        this.aeron = aeron;
        this.deadline = deadline;
        this.auth = auth;
    }

    private Link link(ExpertReplica r) {
        Link l = links.get(r); // a plain get first: this runs per expert per layer
        if (l == null) {
            l = links.computeIfAbsent(r, k -> {
                Publication p = aeron.addPublication(k.channel(), k.streamId());
                return new Link(new TokenBatchWriter(new BoundedPublisher(p, IdleStrategies.backoff(), deadline), auth));
            });
        }
        return l;
    }

    /** The dispatching thread's writer to {@code r}. */
    TokenBatchWriter writer(ExpertReplica r) {
        return link(r).writer;
    }

    /** Whether {@code r}'s publication has a subscriber now; any thread. */
    @Override
    public boolean connected(ExpertReplica r) {
        return link(r).connected();
    }

    /**
     * Whether {@code r} is gone: no subscriber now, and none for longer than
     * {@link #CONNECT_GRACE_NANOS} (since the last time one was seen, or since the publication was
     * opened). A batch is not sent to a gone replica at all, so a dead expert fails requests at
     * once instead of after the publication deadline.
     */
    boolean gone(ExpertReplica r, long nowNanos) {
        Link l = link(r);
        return !l.connected() && nowNanos - l.lastConnectedNanos > CONNECT_GRACE_NANOS;
    }

    /** Keeps publications to exactly {@code live}: new ones opened, those of replicas that left closed. */
    void retain(List<ExpertReplica> live) {
        links.entrySet().removeIf(e -> {
            if (live.contains(e.getKey())) {
                return false;
            }
            e.getValue().writer.publisher().publication().close();
            return true;
        });
        for (ExpertReplica r : live) {
            link(r);
        }
    }

    /** Offers that met back-pressure, over every publication. */
    long backPressureEvents() {
        long n = 0;
        for (Link l : links.values()) {
            n += l.writer.publisher().backPressureEvents();
        }
        return n;
    }

    @Override
    public void close() {
        for (Link l : links.values()) {
            l.writer.publisher().publication().close();
        }
        links.clear();
    }
}
