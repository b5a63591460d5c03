package io.moecluster.router;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The attention replicas a router spreads requests over. Each request goes to the replica with
 * the fewest sequences this router has in flight there, and stays there for its lifetime (its KV
 * cache lives on that replica).
 */
public final class AttentionPool implements AutoCloseable {
    private final List<AttentionClient> replicas;
    private final AtomicIntegerArray active;

    public AttentionPool(List<AttentionClient> replicas) {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("an attention pool needs at least one replica");
        }
        this.replicas = List.copyOf(replicas);
        this.active = new AtomicIntegerArray(replicas.size());
    }

    public List<AttentionClient> replicas() {
        return replicas;
    }

    /** Sequences this router has running on replica {@code index}. */
    public int activeSequences(int index) {
        return active.get(index);
    }

    /** Runs {@code request} on the least-loaded replica; {@code events} may be a ClientResponseObserver. */
    public void run(RunRequest request, StreamObserver<RunEvent> events) {
        int chosen = leastLoaded();
        active.incrementAndGet(chosen);
        try {
            replicas.get(chosen).run(request, new Counted(events, chosen));
        } catch (RuntimeException e) {
            active.decrementAndGet(chosen);
            throw e;
        }
    }

    private int leastLoaded() {
        int best = 0;
        for (int i = 1; i < replicas.size(); i++) {
            if (active.get(i) < active.get(best)) {
                best = i;
            }
        }
        return best;
    }

    @Override
    public void close() {
        for (AttentionClient c : replicas) {
            c.close();
        }
    }

    /** Forwards everything and gives the replica's slot back once the call ends, however it ends. */
    private final class Counted implements ClientResponseObserver<RunRequest, RunEvent> {
        private final StreamObserver<RunEvent> delegate;
        private final int replica;
        private final AtomicBoolean ended = new AtomicBoolean();

        Counted(StreamObserver<RunEvent> delegate, int replica) {
            this.delegate = delegate;
            this.replica = replica;
        }

        @Override
        @SuppressWarnings("unchecked")
        public void beforeStart(ClientCallStreamObserver<RunRequest> requestStream) {
            if (delegate instanceof ClientResponseObserver<?, ?> c) {
                ((ClientResponseObserver<RunRequest, RunEvent>) c).beforeStart(requestStream);
            }
        }

        @Override
        public void onNext(RunEvent value) {
            delegate.onNext(value);
        }

        @Override
        public void onError(Throwable t) {
            end();
            delegate.onError(t);
        }

        @Override
        public void onCompleted() {
            end();
            delegate.onCompleted();
        }

        private void end() {
            if (ended.compareAndSet(false, true)) {
                active.decrementAndGet(replica);
            }
        }
    }
}
