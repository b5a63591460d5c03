package io.moecluster.router;

import io.moecluster.core.forward.ExpertUnavailableException;
import io.moecluster.core.forward.ExpertDispatcher;
import io.aeron.Aeron;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.moecluster.router.placement.ClusterSpec;
import io.moecluster.router.placement.ExpertPlacement;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultView;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchWriter;
import io.moecluster.transport.TransportException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Map;
import org.agrona.concurrent.IdleStrategy;

/**
 * Dispatches expert batches over Aeron to the expert services of the placement table and collects
 * their answers on this dispatcher's reply stream. One TokenBatch per (expert, layer) with the rows
 * and their routing weights; the answers arrive in any order and land in their rows.
 *
 * <p>A batch id is never reused, so a late answer to a batch given up on is recognised and dropped.
 * Failures name the expert service: unreachable (publication not connected within the publish
 * deadline), an ERROR reply, or no answer within the reply timeout.
 */
public final class AeronExpertDispatcher implements ExpertDispatcher {
    private final Aeron aeron;
    private final ClusterSpec spec;
    private final ExpertPlacement placement;
    private final int senderId;
    private final int replyStreamId;
    private final int hidden;
    private final ElementType wire;
    private final long timeoutNanos;
    private final Duration publishDeadline;
    private final IdleStrategy idle;
    private final Subscription replies;
    private final MessagePoller poller;
    // Concurrent: the metrics scrape reads the publishers' counters from another thread.
    private final Map<String, TokenBatchWriter> writers = new java.util.concurrent.ConcurrentHashMap<>();

    // Pending batches of the current layer, by slot; at most one per expert.
    private final long[] pendingBatch;
    private final int[] pendingRow;
    private final int[] pendingCount;
    private final int[] pendingExpert;
    private final int[] pendingLayer;
    private final MemorySegment[] pendingOut;
    private final String[] pendingError;
    private final ClusterSpec.Expert[] pendingHost;
    private int pending;
    private int outstanding;
    private long nextBatchId = 1;
    private float[] weightsArray;
    private MemorySegment weightsSegment;

    /**
     * @param senderId {@link ClusterSpec#ROUTER_SENDER} for the router-service, else the attention
     *     replica's {@link ClusterSpec#senderId}: expert services answer on that sender's channel
     * @param replyStreamId where expert services answer this dispatcher (one per router instance)
     * @param slots the most batches one layer dispatches: experts plus the shared expert
     */
    public AeronExpertDispatcher(Aeron aeron, ClusterSpec spec, ExpertPlacement placement, int senderId,
                                 int replyStreamId, int hidden, int slots, ElementType wire, Duration replyTimeout,
                                 Duration publishDeadline) {
        this.aeron = aeron;
        this.spec = spec;
        this.placement = placement;
        this.senderId = senderId;
        this.replyStreamId = replyStreamId;
        this.hidden = hidden;
        this.wire = wire;
        this.timeoutNanos = replyTimeout.toNanos();
        this.publishDeadline = publishDeadline;
        this.idle = IdleStrategies.dataPlane();
        this.replies = aeron.addSubscription(spec.replyChannel(senderId), replyStreamId);
        this.poller = new MessagePoller(replies).onBatchResult(this::onResult);
        this.pendingBatch = new long[slots];
        this.pendingRow = new int[slots];
        this.pendingCount = new int[slots];
        this.pendingExpert = new int[slots];
        this.pendingLayer = new int[slots];
        this.pendingOut = new MemorySegment[slots];
        this.pendingError = new String[slots];
        this.pendingHost = new ClusterSpec.Expert[slots];
    }

    public long malformedReplies() {
        return poller.counter().total();
    }

    private io.moecluster.transport.TraceHeader trace;

    /** Trace context for the batches sent from now on ({@link TracedExpertDispatcher} fills it per layer). */
    public AeronExpertDispatcher traceHeader(io.moecluster.transport.TraceHeader header) {
        this.trace = header;
        return this;
    }

    private TokenBatchWriter traced(TokenBatchWriter w) {
        return trace == null ? w : trace.applyTo(w);
    }

    /** Offers that met back-pressure, over every expert service's publication. */
    public long backPressureEvents() {
        long n = 0;
        for (TokenBatchWriter w : writers.values()) {
            n += w.publisher().backPressureEvents();
        }
        return n;
    }

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, float[] weights,
                         MemorySegment out) {
        ClusterSpec.Expert host = placement.host(layer, expert);
        if (host == null) {
            throw new ExpertUnavailableException(layer, expert, "no expert service hosts expert " + expert
                    + " of layer " + layer);
        }
        if (pending == pendingBatch.length) {
            throw new IllegalStateException("more than " + pendingBatch.length + " batches in one layer");
        }
        if (weights != weightsArray) {
            weightsArray = weights;
            weightsSegment = MemorySegment.ofArray(weights);
        }
        long batchId = nextBatchId++;
        int slot = pending++;
        pendingBatch[slot] = batchId;
        pendingRow[slot] = row;
        pendingCount[slot] = count;
        pendingExpert[slot] = expert;
        pendingLayer[slot] = layer;
        pendingOut[slot] = out;
        pendingError[slot] = null;
        pendingHost[slot] = host;
        outstanding++;
        try {
            traced(writer(host)).send(batchId, layer, expert, senderId, replyStreamId, rows, (long) row * hidden, count, hidden,
                    wire, weightsSegment, row);
        } catch (TransportException e) {
            clear();
            throw new ExpertUnavailableException(layer, expert, "expert service " + host.id() + " (stream "
                    + host.streamId() + ") is unreachable for expert " + expert + " of layer " + layer + ": "
                    + e.getMessage());
        }
    }

    private TokenBatchWriter writer(ClusterSpec.Expert host) {
        TokenBatchWriter w = writers.get(host.id()); // a plain get: this runs per expert per layer
        if (w == null) {
            Publication p = aeron.addPublication(spec.channelOf(host), host.streamId());
            w = new TokenBatchWriter(new BoundedPublisher(p, IdleStrategies.backoff(), publishDeadline));
            writers.put(host.id(), w);
        }
        return w;
    }

    @Override
    public void awaitAll() {
        long deadline = System.nanoTime() + timeoutNanos;
        try {
            while (outstanding > 0) {
                int work = poller.poll(16);
                if (outstanding == 0) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw timeout();
                }
                idle.idle(work);
            }
            for (int slot = 0; slot < pending; slot++) {
                if (pendingError[slot] != null) {
                    throw new ExpertUnavailableException(pendingLayer[slot], pendingExpert[slot], "expert service "
                            + pendingHost[slot].id() + " failed expert " + pendingExpert[slot] + " of layer "
                            + pendingLayer[slot] + ": " + pendingError[slot]);
                }
            }
        } finally {
            clear();
        }
    }

    private ExpertUnavailableException timeout() {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingOut[slot] != null) {
                return new ExpertUnavailableException(pendingLayer[slot], pendingExpert[slot], "expert service "
                        + pendingHost[slot].id() + " did not answer expert " + pendingExpert[slot] + " of layer "
                        + pendingLayer[slot] + " (batch " + pendingBatch[slot] + ") within "
                        + timeoutNanos / 1_000_000 + " ms");
            }
        }
        return new ExpertUnavailableException(-1, -1, "expert batches timed out");
    }

    private void clear() {
        for (int slot = 0; slot < pending; slot++) {
            pendingOut[slot] = null;
            pendingHost[slot] = null;
        }
        pending = 0;
        outstanding = 0;
    }

    private void onResult(BatchResultView r) {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingBatch[slot] != r.batchId() || pendingOut[slot] == null) {
                continue;
            }
            if (!r.isOk()) {
                pendingError[slot] = r.errorMessage();
            } else if (r.tokenCount() != pendingCount[slot] || r.hiddenSize() != hidden) {
                pendingError[slot] = "answered " + r.tokenCount() + " x " + r.hiddenSize() + " rows for a batch of "
                        + pendingCount[slot] + " x " + hidden;
            } else {
                r.copyRowsTo(pendingOut[slot], (long) pendingRow[slot] * hidden);
            }
            // The output is filled (or the slot failed): later duplicates must not touch it.
            pendingOut[slot] = null;
            outstanding--;
            return;
        }
        // An answer to a batch given up on (timeout or error): dropped.
    }

    @Override
    public void close() {
        for (TokenBatchWriter w : writers.values()) {
            w.publisher().publication().close();
        }
        writers.clear();
        replies.close();
    }
}
