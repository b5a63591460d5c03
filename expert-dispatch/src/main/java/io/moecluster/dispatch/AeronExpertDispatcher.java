package io.moecluster.dispatch;

import io.aeron.Aeron;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.moecluster.core.moe.ExpertDispatcher;
import io.moecluster.core.moe.ExpertUnavailableException;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.placement.ExpertPlacement;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultView;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchWriter;
import io.moecluster.transport.TraceHeader;
import io.moecluster.transport.TransportException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.IdleStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dispatches expert batches over Aeron to the replicas of the placement table and collects their
 * answers on this dispatcher's reply stream. One TokenBatch per (expert, layer) with the rows and
 * their routing weights; the answers arrive in any order and land in their rows.
 *
 * <p><b>Replica choice:</b> the live replica with the fewest tokens outstanding, ties to the one
 * routed the fewest tokens so far, so equal replicas share an expert's load evenly. A replica that
 * fails (not connected, an ERROR answer, or no answer within the attempt timeout) goes into
 * quarantine and its batch is sent again, under the same batch id, to another replica of the
 * expert: nothing is lost while one replica is left. Replicas compute bit-identical rows, so
 * whichever answer comes first is used and a late duplicate is dropped.
 *
 * <p>A batch id is never reused across batches. Failures name the expert services tried.
 * Not thread-safe: one thread (the MoE router's caller) dispatches and waits.
 */
public final class AeronExpertDispatcher implements ExpertDispatcher {
    private static final Logger LOG = LoggerFactory.getLogger(AeronExpertDispatcher.class);
    /** Replicas one batch is sent to at most before the expert is reported unavailable. */
    static final int MAX_ATTEMPTS = 4;

    private final Aeron aeron;
    private final ExpertPlacement placement;
    private final int senderId;
    private final int replyStreamId;
    private final int hidden;
    private final ElementType wire;
    private final long timeoutNanos;
    private final long attemptTimeoutNanos;
    private final Duration publishDeadline;
    private final IdleStrategy idle;
    private final Subscription replies;
    private final MessagePoller poller;
    // Concurrent: the metrics scrape reads the publishers' counters from another thread.
    private final Map<ExpertReplica, TokenBatchWriter> writers = new ConcurrentHashMap<>();
    private long placementVersion = -1;

    // Pending batches of the current layer, by slot; at most one per expert.
    private final long[] pendingBatch;
    private final int[] pendingRow;
    private final int[] pendingCount;
    private final int[] pendingExpert;
    private final int[] pendingLayer;
    private final MemorySegment[] pendingRows;
    private final MemorySegment[] pendingWeights;
    private final MemorySegment[] pendingOut;
    private final String[] pendingError;
    private final long[] pendingSentAt;
    private final boolean[] pendingLastChance;
    private final ExpertReplica[][] tried;
    private final int[] attempts;
    private int pending;
    private int outstanding;
    private long nextBatchId = 1;


    private final AtomicLong redispatches = new AtomicLong();
    private volatile long lastRedispatchEpochMillis;
    private TraceHeader trace;
    private AutoCloseable alsoClose;

    /**
     * @param senderId {@link ClusterSpec#ROUTER_SENDER} for the router-service, else the attention
     *     replica's {@link ClusterSpec#senderId}: expert services answer on that sender's channel
     * @param replyChannel where this dispatcher subscribes for answers (the sender's own channel)
     * @param replyStreamId where expert services answer this dispatcher (one per router instance)
     * @param slots the most batches one layer dispatches: experts plus the shared expert
     * @param replyTimeout how long a layer may wait for its answers in all before it fails
     * @param attemptTimeout how long one replica may take before the batch also goes to another
     */
    public AeronExpertDispatcher(Aeron aeron, String replyChannel, ExpertPlacement placement, int senderId,
                                 int replyStreamId, int hidden, int slots, ElementType wire, Duration replyTimeout,
                                 Duration attemptTimeout, Duration publishDeadline) {
        this.aeron = aeron;
        this.placement = placement;
        this.senderId = senderId;
        this.replyStreamId = replyStreamId;
        this.hidden = hidden;
        this.wire = wire;
        this.timeoutNanos = replyTimeout.toNanos();
        this.attemptTimeoutNanos = attemptTimeout.toNanos();
        this.publishDeadline = publishDeadline;
        this.idle = IdleStrategies.dataPlane();
        this.replies = aeron.addSubscription(replyChannel, replyStreamId);
        this.poller = new MessagePoller(replies).onBatchResult(this::onResult);
        this.pendingBatch = new long[slots];
        this.pendingRow = new int[slots];
        this.pendingCount = new int[slots];
        this.pendingExpert = new int[slots];
        this.pendingLayer = new int[slots];
        this.pendingRows = new MemorySegment[slots];
        this.pendingWeights = new MemorySegment[slots];
        this.pendingOut = new MemorySegment[slots];
        this.pendingError = new String[slots];
        this.pendingSentAt = new long[slots];
        this.pendingLastChance = new boolean[slots];
        this.tried = new ExpertReplica[slots][MAX_ATTEMPTS];
        this.attempts = new int[slots];
    }

    public long malformedReplies() {
        return poller.counter().total();
    }

    /** Trace context for the batches sent from now on ({@link TracedExpertDispatcher} fills it per layer). */
    public AeronExpertDispatcher traceHeader(TraceHeader header) {
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

    /** Batches sent again to another replica after the first one failed or was too slow. */
    public long redispatches() {
        return redispatches.get();
    }

    /** Wall-clock time of the latest re-dispatch; 0 if none yet. */
    public long lastRedispatchEpochMillis() {
        return lastRedispatchEpochMillis;
    }

    public ExpertPlacement placement() {
        return placement;
    }

    /** Something to close with this dispatcher, after it: the registry watch feeding its placement. */
    public AeronExpertDispatcher closing(AutoCloseable resource) {
        this.alsoClose = resource;
        return this;
    }

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                         MemorySegment out) {
        if (pending == pendingBatch.length) {
            throw new IllegalStateException("more than " + pendingBatch.length + " batches in one layer");
        }
        refreshWriters();
        int slot = pending++;
        pendingBatch[slot] = nextBatchId++;
        pendingRow[slot] = row;
        pendingCount[slot] = count;
        pendingExpert[slot] = expert;
        pendingLayer[slot] = layer;
        pendingRows[slot] = rows;
        pendingWeights[slot] = weights;
        pendingOut[slot] = out;
        pendingError[slot] = null;
        pendingLastChance[slot] = false;
        attempts[slot] = 0;
        outstanding++;
        if (!sendToNextReplica(slot, System.nanoTime())) {
            ExpertUnavailableException e = unavailable(slot, "unreachable, and no other replica is live");
            clear();
            throw e;
        }
    }

    /**
     * Sends the slot's batch to the best replica not tried yet; a replica that cannot be reached is
     * quarantined and the next one tried. False when none is left.
     */
    private boolean sendToNextReplica(int slot, long now) {
        while (attempts[slot] < MAX_ATTEMPTS) {
            ExpertReplica r = choose(slot, now);
            if (r == null) {
                return false;
            }
            tried[slot][attempts[slot]++] = r;
            try {
                traced(writer(r)).send(pendingBatch[slot], pendingLayer[slot], pendingExpert[slot], senderId, replyStreamId,
                        pendingRows[slot], (long) pendingRow[slot] * hidden, pendingCount[slot], hidden, wire,
                        pendingWeights[slot], pendingRow[slot]);
                r.sent(pendingExpert[slot], pendingCount[slot]);
                pendingSentAt[slot] = now;
                return true;
            } catch (TransportException e) {
                r.failed("unreachable: " + e.getMessage(), System.nanoTime());
                LOG.warn("{} is unreachable for expert {} of layer {}: {}", r, pendingExpert[slot], pendingLayer[slot],
                        e.getMessage());
            }
        }
        return false;
    }

    /**
     * Least outstanding tokens among the replicas not tried for this slot, out of quarantine and
     * connected; failing that one that is merely not connected yet; failing that the quarantined one
     * due back first (a lone replica that was restarted must get traffic again).
     */
    private ExpertReplica choose(int slot, long now) {
        ExpertReplica[] candidates = placement.replicas(pendingLayer[slot], pendingExpert[slot]);
        ExpertReplica best = null;
        int bestRank = Integer.MAX_VALUE;
        for (ExpertReplica r : candidates) {
            if (wasTried(slot, r)) {
                continue;
            }
            int rank = r.quarantined(now) ? 2 : connected(r) ? 0 : 1;
            if (best == null || rank < bestRank || (rank == bestRank && better(r, best, rank, slot))) {
                best = r;
                bestRank = rank;
            }
        }
        return best;
    }

    private boolean better(ExpertReplica r, ExpertReplica than, int rank, int slot) {
        if (rank == 2) {
            return r.quarantinedUntil() - than.quarantinedUntil() < 0;
        }
        long a = r.outstandingTokens();
        long b = than.outstandingTokens();
        if (a != b) {
            return a < b;
        }
        return r.tokensRouted(pendingExpert[slot]) < than.tokensRouted(pendingExpert[slot]);
    }

    private boolean wasTried(int slot, ExpertReplica r) {
        for (int i = 0; i < attempts[slot]; i++) {
            if (tried[slot][i] == r) {
                return true;
            }
        }
        return false;
    }

    private boolean connected(ExpertReplica r) {
        return writer(r).publisher().publication().isConnected();
    }

    private TokenBatchWriter writer(ExpertReplica r) {
        TokenBatchWriter w = writers.get(r); // a plain get: this runs per expert per layer
        if (w == null) {
            Publication p = aeron.addPublication(r.channel(), r.streamId());
            w = new TokenBatchWriter(new BoundedPublisher(p, IdleStrategies.backoff(), publishDeadline));
            writers.put(r, w);
        }
        return w;
    }

    /**
     * On a placement change: publications to new replicas are opened now, so they are connected by
     * the time they are chosen; those to replicas that left are closed (nothing is pending here
     * between layers).
     */
    private void refreshWriters() {
        long v = placement.version();
        if (v == placementVersion || pending != 0) {
            return;
        }
        placementVersion = v;
        List<ExpertReplica> live = placement.replicas();
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

    @Override
    public void awaitAll() {
        long start = System.nanoTime();
        long deadline = start + timeoutNanos;
        try {
            while (outstanding > 0) {
                int work = poller.poll(16);
                if (outstanding == 0) {
                    break;
                }
                long now = System.nanoTime();
                if (work == 0) {
                    rescueStragglers(now);
                    if (outstanding == 0) {
                        break;
                    }
                }
                if (now - deadline > 0) {
                    throw timeout();
                }
                idle.idle(work);
            }
            for (int slot = 0; slot < pending; slot++) {
                if (pendingError[slot] != null) {
                    throw unavailable(slot, pendingError[slot]);
                }
            }
        } finally {
            clear();
        }
    }

    /**
     * Batches whose replica went away (its publication lost its subscriber) or is slower than the
     * attempt timeout go to another replica; with none left, a disconnected replica fails the
     * batch at once and a slow one gets until the layer's deadline.
     */
    private void rescueStragglers(long now) {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingOut[slot] == null || pendingLastChance[slot]) {
                continue;
            }
            ExpertReplica r = tried[slot][attempts[slot] - 1];
            boolean gone = !connected(r);
            if (!gone && now - pendingSentAt[slot] < attemptTimeoutNanos) {
                continue;
            }
            moveOn(slot, r, gone ? DISCONNECTED : "no answer within " + attemptTimeoutNanos / 1_000_000 + " ms", true, now);
        }
    }

    private static final String DISCONNECTED = "disconnected";

    /**
     * The slot's replica failed: send the batch to the next one, if any. Unreachable and slow
     * replicas go into quarantine; one that answered an error does not (the same request may fail
     * anywhere, and one bad request must not empty the table).
     */
    private void moveOn(int slot, ExpertReplica failed, String why, boolean quarantine, long now) {
        if (quarantine) {
            failed.failed(why, now);
        }
        int before = attempts[slot];
        if (sendToNextReplica(slot, now)) {
            failed.settled(pendingCount[slot]);
            redispatches.incrementAndGet();
            lastRedispatchEpochMillis = System.currentTimeMillis();
            LOG.warn("{} {}: batch {} (expert {} of layer {}, {} tokens) re-dispatched to {}", failed, why,
                    pendingBatch[slot], pendingExpert[slot], pendingLayer[slot], pendingCount[slot],
                    tried[slot][attempts[slot] - 1]);
            return;
        }
        if (attempts[slot] > before) {
            // Every other replica was unreachable: the batch stays with the failed one, if anywhere.
            attempts[slot] = before;
        }
        if (why == DISCONNECTED) {
            fail(slot, "disconnected, and no other replica is reachable");
        } else {
            // No other replica: the slow one keeps the batch until the layer's deadline.
            pendingLastChance[slot] = true;
        }
    }

    private void fail(int slot, String why) {
        if (pendingOut[slot] == null) {
            return;
        }
        pendingError[slot] = why;
        pendingOut[slot] = null;
        tried[slot][attempts[slot] - 1].settled(pendingCount[slot]);
        outstanding--;
    }

    private ExpertUnavailableException unavailable(int slot, String why) {
        StringBuilder services = new StringBuilder();
        for (int i = 0; i < attempts[slot]; i++) {
            services.append(i == 0 ? "" : ", ").append(tried[slot][i].id());
        }
        int e = pendingExpert[slot];
        int l = pendingLayer[slot];
        String where = attempts[slot] == 0 ? "no expert service hosts expert " + e + " of layer " + l + " (" + why + ")"
                : "expert service " + services + " failed expert " + e + " of layer " + l + ": " + why;
        return new ExpertUnavailableException(l, e, where);
    }

    private ExpertUnavailableException timeout() {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingOut[slot] != null) {
                return unavailable(slot, "no answer to batch " + pendingBatch[slot] + " within " + timeoutNanos / 1_000_000
                        + " ms");
            }
        }
        return new ExpertUnavailableException(-1, -1, "expert batches timed out");
    }

    private void clear() {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingOut[slot] != null && attempts[slot] > 0) {
                tried[slot][attempts[slot] - 1].settled(pendingCount[slot]);
            }
            pendingOut[slot] = null;
            pendingRows[slot] = null;
            for (int i = 0; i < attempts[slot]; i++) {
                tried[slot][i] = null;
            }
            attempts[slot] = 0;
        }
        pending = 0;
        outstanding = 0;
    }

    private void onResult(BatchResultView r) {
        for (int slot = 0; slot < pending; slot++) {
            if (pendingBatch[slot] != r.batchId() || pendingOut[slot] == null) {
                continue;
            }
            ExpertReplica current = tried[slot][attempts[slot] - 1];
            String problem = null;
            if (!r.isOk()) {
                problem = r.errorMessage();
            } else if (r.tokenCount() != pendingCount[slot] || r.hiddenSize() != hidden) {
                problem = "answered " + r.tokenCount() + " x " + r.hiddenSize() + " rows for a batch of "
                        + pendingCount[slot] + " x " + hidden;
            }
            if (problem != null) {
                LOG.warn("{} answered an error for batch {}: {}", current, r.batchId(), problem);
                moveOn(slot, current, problem, false, System.nanoTime());
                if (pendingOut[slot] != null && pendingLastChance[slot]) {
                    fail(slot, problem);
                }
                return;
            }
            r.copyRowsTo(pendingOut[slot], (long) pendingRow[slot] * hidden);
            if (attempts[slot] == 1) {
                current.answered();
            }
            current.settled(pendingCount[slot]);
            // The output is filled: later duplicates (a slow replica answering after all) must not touch it.
            pendingOut[slot] = null;
            outstanding--;
            return;
        }
        // An answer to a batch given up on, or a duplicate from a replica that was too slow: dropped.
    }

    @Override
    public void close() {
        for (TokenBatchWriter w : writers.values()) {
            w.publisher().publication().close();
        }
        writers.clear();
        replies.close();
        if (alsoClose != null) {
            try {
                alsoClose.close();
            } catch (Exception e) {
                LOG.warn("closing {}: {}", alsoClose, e.toString());
            }
        }
    }
}
