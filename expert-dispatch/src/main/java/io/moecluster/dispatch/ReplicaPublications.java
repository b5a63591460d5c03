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
 * it is connected by the time it is chosen) and closed when it leaves.
 */
final class ReplicaPublications implements ReplicaChoice.Links, AutoCloseable {
    private final Aeron aeron;
    private final Duration deadline;
    private final DataPlaneAuth auth;
    // Concurrent: the metrics scrape reads the publishers' counters from another thread.
    private final Map<ExpertReplica, TokenBatchWriter> writers = new ConcurrentHashMap<>();

    ReplicaPublications(Aeron aeron, Duration deadline, DataPlaneAuth auth) {
        this.aeron = aeron;
        this.deadline = deadline;
        this.auth = auth;
    }

    TokenBatchWriter writer(ExpertReplica r) {
        TokenBatchWriter w = writers.get(r); // a plain get: this runs per expert per layer
        if (w == null) {
            Publication p = aeron.addPublication(r.channel(), r.streamId());
            w = new TokenBatchWriter(new BoundedPublisher(p, IdleStrategies.backoff(), deadline), auth);
            writers.put(r, w);
        }
        return w;
    }

    @Override
    public boolean connected(ExpertReplica r) {
        return writer(r).publisher().publication().isConnected();
    }

    /** Keeps publications to exactly {@code live}: new ones opened, those of replicas that left closed. */
    void retain(List<ExpertReplica> live) {
        writers.entrySet().removeIf(e -> {
            if (live.contains(e.getKey())) {
                return false;
            }
            e.getValue().publisher().publication().close();
            return true;
        });
        for (ExpertReplica r : live) {
            writer(r);
        }
    }

    /** Offers that met back-pressure, over every publication. */
    long backPressureEvents() {
        long n = 0;
        for (TokenBatchWriter w : writers.values()) {
            n += w.publisher().backPressureEvents();
        }
        return n;
    }

    @Override
    public void close() {
        for (TokenBatchWriter w : writers.values()) {
            w.publisher().publication().close();
        }
        writers.clear();
    }
}
