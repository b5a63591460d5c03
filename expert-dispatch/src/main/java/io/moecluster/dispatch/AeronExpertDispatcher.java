package io.moecluster.dispatch;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertDispatcher;
import io.moecluster.core.moe.ExpertUnavailableException;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.placement.ExpertPlacement;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.dispatch.placement.PlacementWatch;
import io.moecluster.dispatch.placement.ReplicaChoice;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultView;
import io.moecluster.transport.DataPlaneSettings;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MalformedMessageException;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.ReplyAwaiter;
import io.moecluster.transport.TraceHeader;
import io.moecluster.transport.TransportException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dispatches expert batches over Aeron to the replicas of the placement table and collects their
 * answers on this dispatcher's reply stream. One TokenBatch per (expert, layer) with the rows and
 * their routing weights; the answers arrive in any order and land in their rows.
 *
 * <p>Each batch goes to the replica {@link ReplicaChoice} picks. A replica that fails (see
 * {@link FailReason}) and its batch is sent again, under the same batch id, to another replica of
 * the expert: nothing is lost while one replica is left. Replicas compute bit-identical rows, so
 * whichever answer comes first is used and a late duplicate is dropped.
 *
 * <p>A batch id is never reused across batches. Failures name the expert services tried. Two
 * layers may be out at once, one per group ({@link #groups()}): the MoE block's two micro-batches;
 * while one group is awaited, the other's answers land and its failovers run too.
 * Not thread-safe: one thread (the MoE block's caller) dispatches and waits.
 */
public final class AeronExpertDispatcher implements ExpertDispatcher, ReplyAwaiter.Progress {
    private static final Logger LOG = LoggerFactory.getLogger(AeronExpertDispatcher.class);
    /** Layers that may be out at once, one per group: the two micro-batches of the ping-pong pipeline. */
    private static final int GROUPS = 2;
    /** How long one layer may wait for all its answers unless the context says otherwise. */
    public static final Duration DEFAULT_REPLY_TIMEOUT = Duration.ofSeconds(10);
    /** How long one replica may take before its batch also goes to another, unless the context says otherwise. */
    public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(2);

    /** How to build a dispatcher; {@link #conclude()} fills the defaults and checks the values. */
    public static final class Context extends DataPlaneSettings<Context> {
        private Aeron aeron;
        private ExpertPlacement placement;
        private AutoCloseable placementOwner;
        private String replyChannel;
        private int replyStreamId = -1;
        private int senderId = -1;
        private int hiddenSize;
        private int expertSlots;
        private ElementType wire = ElementType.F32;
        private Duration replyTimeout = DEFAULT_REPLY_TIMEOUT;
        private Duration attemptTimeout;

        /** The Aeron client to publish and subscribe with (not closed by the dispatcher). Required. */
        public Context aeron(Aeron aeron) {
            this.aeron = aeron;
            return this;
        }

        /** A placement table someone else keeps current. This or {@link #placement(PlacementWatch)} is required. */
        public Context placement(ExpertPlacement placement) {
            this.placement = placement;
            this.placementOwner = null;
            return this;
        }

        /** The placement a registry watch keeps current; the watch is closed with the dispatcher. */
        public Context placement(PlacementWatch watch) {
            this.placement = watch.placement();
            this.placementOwner = watch;
            return this;
        }

        /**
         * Where expert services answer: this dispatcher's channel (its own service's) and stream (one
         * per router instance). Required.
         */
        public Context replies(String channel, int streamId) {
            this.replyChannel = channel;
            this.replyStreamId = streamId;
            return this;
        }

        /**
         * {@link ClusterSpec#ROUTER_SENDER} for the router-service, else the attention replica's
         * {@link ClusterSpec#senderId}: expert services answer on that sender's channel. Required.
         */
        public Context senderId(int senderId) {
            this.senderId = senderId;
            return this;
        }

        /** Hidden size and expert slots (routed experts plus the shared one) of the model. Required. */
        public Context model(ModelConfig config) {
            this.hiddenSize = config.hiddenSize();
            this.expertSlots = config.expertSlots();
            return this;
        }

        /** The element type of the rows on the wire; F32 (the default) keeps greedy tokens equal to one process. */
        public Context wire(ElementType wire) {
            this.wire = wire;
            return this;
        }

        /** How long one layer may wait for all its answers before it fails; default 10 s. */
        public Context replyTimeout(Duration replyTimeout) {
            this.replyTimeout = replyTimeout;
            return this;
        }

        /** How long one replica may take before the batch also goes to another; default min(2 s, reply timeout). */
        public Context attemptTimeout(Duration attemptTimeout) {
            this.attemptTimeout = attemptTimeout;
            return this;
        }

        @Override
        protected void concludeSettings() {
            Objects.requireNonNull(aeron, "aeron");
            Objects.requireNonNull(placement, "placement");
            Objects.requireNonNull(replyChannel, "reply channel");
            if (replyStreamId < 0 || senderId < 0 || hiddenSize < 1 || expertSlots < 1) {
                throw new IllegalArgumentException("expert dispatcher: replies, senderId and model are required, got "
                        + replyStreamId + ", " + senderId + ", hidden " + hiddenSize + ", slots " + expertSlots);
            }
            requirePositiveMillis("expert reply timeout", replyTimeout);
            if (attemptTimeout == null) {
                attemptTimeout = attemptTimeoutFor(replyTimeout);
            }
            requirePositiveMillis("--replica-timeout-ms", attemptTimeout);
        }
    }

    /** The default attempt timeout under a layer timeout: {@link #DEFAULT_ATTEMPT_TIMEOUT}, or the layer's if shorter. */
    public static Duration attemptTimeoutFor(Duration replyTimeout) {
        return DEFAULT_ATTEMPT_TIMEOUT.compareTo(replyTimeout) <= 0 ? DEFAULT_ATTEMPT_TIMEOUT : replyTimeout;
    }

    private final ExpertPlacement placement;
    private final AutoCloseable placementOwner;
    private final int senderId;
    private final int replyStreamId;
    private final int hidden;
    private final ElementType wire;
    private final long timeoutNanos;
    private final long attemptTimeoutNanos;
    private final ReplicaPublications publications;
    private final Subscription replies;
    private final MessagePoller poller;
    private final ReplyAwaiter awaiter;
    /** Per dispatch group ({@link #groups()}): the batches of its layer in flight, from index 0. */
    private final PendingBatch[][] slots;
    private final int[] pending = new int[GROUPS];
    private final int[] outstanding = new int[GROUPS];
    /** The group {@link #awaitAll(int)} waits for: what {@link #done()} answers about. */
    private int awaiting;
    private long nextBatchId = 1;
    private long placementVersion = -1;
    private final AtomicLong redispatches = new AtomicLong();
    private volatile long lastRedispatchEpochMillis;
    private TraceHeader trace;
    /** Whether the last replica {@link #sendToNextReplica} passed over was skipped as gone. */
    private boolean lastSkippedGone;

    public AeronExpertDispatcher(Context ctx) {
        ctx.conclude();
        this.placement = ctx.placement;
        this.placementOwner = ctx.placementOwner;
        this.senderId = ctx.senderId;
        this.replyStreamId = ctx.replyStreamId;
        this.hidden = ctx.hiddenSize;
        this.wire = ctx.wire;
        this.timeoutNanos = ctx.replyTimeout.toNanos();
        this.attemptTimeoutNanos = ctx.attemptTimeout.toNanos();
        this.publications = new ReplicaPublications(ctx.aeron, ctx.publicationDeadline(), ctx.dataPlaneAuth());
        this.replies = ctx.aeron.addSubscription(ctx.replyChannel, ctx.replyStreamId);
        this.poller = new MessagePoller(replies, ctx.dataPlaneAuth()).onBatchResult(this::onResult);
        this.awaiter = new ReplyAwaiter(poller, IdleStrategies.parse(ctx.idleStrategy()), 16);
        this.slots = new PendingBatch[GROUPS][ctx.expertSlots];
        for (PendingBatch[] group : slots) {
            for (int i = 0; i < group.length; i++) {
                group[i] = new PendingBatch();
            }
        }
        // Publications to every replica now, so that they are connected by the first layer and the
        // status reports which replicas are there before any traffic.
        refreshPublications();
    }

    /**
     * Whether {@code replica} can take batches now: its publication has a subscriber (the process
     * is there: a SIGKILLed one loses it when the media driver times its client out, 5 s) and it
     * is not in quarantine. Any thread (the status).
     */
    public boolean live(ExpertReplica replica, long nowNanos) {
        return !replica.quarantined(nowNanos) && publications.connected(replica);
    }

    public long malformedReplies() {
        return poller.counter().total();
    }

    /** Replies dropped because their authTag did not verify (also counted in {@link #malformedReplies()}). */
    public long unauthenticatedReplies() {
        return poller.counter().count(MalformedMessageException.UNAUTHENTICATED);
    }

    /** Trace context for the batches sent from now on ({@link TracedExpertDispatcher} fills it per layer). */
    public AeronExpertDispatcher traceHeader(TraceHeader header) {
        this.trace = header;
        return this;
    }

    /** Offers that met back-pressure, over every expert service's publication. */
    public long backPressureEvents() {
        return publications.backPressureEvents();
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

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                         MemorySegment out) {
        dispatch(0, layer, expert, rows, row, count, weights, out);
    }

    /** Two: the answers of both groups come on the one reply stream and land by batch id. */
    @Override
    public int groups() {
        return GROUPS;
    }

    @Override
    public void dispatch(int group, int layer, int expert, MemorySegment rows, int row, int count,
                         MemorySegment weights, MemorySegment out) {
        PendingBatch[] batches = group(group);
        if (pending[group] == batches.length) {
            throw new IllegalStateException("more than " + batches.length + " batches in one layer");
        }
        refreshPublications();
        PendingBatch b = batches[pending[group]++];
        b.start(nextBatchId++, layer, expert, rows, row, count, weights, out);
        outstanding[group]++;
        if (!sendToNextReplica(b, System.nanoTime())) {
            ExpertUnavailableException e = unavailable(b, lastSkippedGone
                    ? "gone (its publication has had no subscriber for over " + ReplicaPublications.CONNECT_GRACE_NANOS / 1_000_000
                            + " ms: the process stopped), and no other replica is live"
                    : "unreachable, and no other replica is live");
            clear(group);
            throw e;
        }
    }

    private PendingBatch[] group(int group) {
        if (group < 0 || group >= GROUPS) {
            throw new IllegalArgumentException("dispatch group " + group + " of " + GROUPS);
        }
        return slots[group];
    }

    /**
     * Sends the batch to the best replica not tried yet; a replica that cannot be reached is
     * quarantined and the next one tried. False when none is left.
     */
    private boolean sendToNextReplica(PendingBatch b, long now) {
        lastSkippedGone = false;
        while (b.attempts < PendingBatch.MAX_ATTEMPTS) {
            ExpertReplica r = ReplicaChoice.choose(placement.replicas(b.layer, b.expert), b.expert, b.tried, b.attempts,
                    now, publications);
            if (r == null) {
                return false;
            }
            b.tried[b.attempts++] = r;
            if (publications.gone(r, now)) {
                // No subscriber for a while: the process is gone (or stalled past the driver's
                // liveness timeout). Not waited for: the next replica, or failing at once.
                if (!r.quarantined(now)) {
                    r.failed("disconnected: its publication has no subscriber", now);
                }
                lastSkippedGone = true;
                continue;
            }
            lastSkippedGone = false;
            try {
                var writer = publications.writer(r);
                if (trace != null) {
                    trace.applyTo(writer);
                }
                writer.send(b.batchId, b.layer, b.expert, senderId, replyStreamId, b.rows, (long) b.row * hidden, b.count,
                        hidden, wire, b.weights, b.row);
                r.sent(b.expert, b.count);
                b.holder = r;
                b.sentAtNanos = now;
                return true;
            } catch (TransportException e) {
                r.failed("unreachable: " + e.getMessage(), System.nanoTime());
                LOG.warn("{} is unreachable for expert {} of layer {}: {}", r, b.expert, b.layer, e.getMessage());
            }
        }
        return false;
    }

    /**
     * On a placement change: publications to new replicas are opened now, so they are connected by
     * the time they are chosen; those to replicas that left are closed (nothing is pending here
     * between layers).
     */
    private void refreshPublications() {
        long v = placement.version();
        if (v == placementVersion || anyPending()) {
            return;
        }
        placementVersion = v;
        publications.retain(placement.replicas());
    }

    private boolean anyPending() {
        for (int n : pending) {
            if (n != 0) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void awaitAll() {
        awaitAll(0);
    }

    /**
     * Waits for the batches of {@code group}; the other group's answers that arrive meanwhile land
     * too, and its failovers go on as for this one's.
     */
    @Override
    public void awaitAll(int group) {
        PendingBatch[] batches = group(group);
        try {
            awaiting = group;
            if (!awaiter.await(this, System.nanoTime() + timeoutNanos)) {
                throw timeout(group);
            }
            for (int i = 0; i < pending[group]; i++) {
                if (batches[i].failure != null) {
                    throw unavailable(batches[i], batches[i].failure);
                }
            }
        } finally {
            clear(group);
        }
    }

    @Override
    public void discard(int group) {
        clear(group);
    }

    @Override
    public boolean done() {
        return outstanding[awaiting] == 0;
    }

    /**
     * Nothing arrived: batches whose replica went away (its publication lost its subscriber) or is
     * slower than the attempt timeout go to another replica; with none left, a disconnected replica
     * fails the batch at once (also after it was given its last chance as merely slow), and a slow
     * one keeps it until the layer's deadline.
     */
    @Override
    public void onQuiet(long now) {
        for (int g = 0; g < GROUPS; g++) {
            for (int i = 0; i < pending[g]; i++) {
                PendingBatch b = slots[g][i];
                if (!b.open()) {
                    continue;
                }
                ExpertReplica r = b.current();
                if (!publications.connected(r)) {
                    if (b.lastChance || !moveOn(b, r, FailReason.DISCONNECTED, "disconnected", now)) {
                        fail(g, b, "disconnected, and no other replica is reachable");
                    }
                } else if (!b.lastChance && now - b.sentAtNanos >= attemptTimeoutNanos) {
                    if (!moveOn(b, r, FailReason.SLOW, "no answer within " + attemptTimeoutNanos / 1_000_000 + " ms", now)) {
                        b.lastChance = true;
                    }
                }
            }
        }
    }

    /**
     * The batch's replica failed: sends the batch to the next replica, if any, and returns whether
     * it did. The failed replica is quarantined when the reason calls for it.
     */
    private boolean moveOn(PendingBatch b, ExpertReplica failed, FailReason reason, String detail, long now) {
        if (reason.quarantines()) {
            failed.failed(detail, now);
        }
        int before = b.attempts;
        if (sendToNextReplica(b, now)) {
            failed.settled(b.count);
            redispatches.incrementAndGet();
            lastRedispatchEpochMillis = System.currentTimeMillis();
            LOG.warn("{} {}: batch {} (expert {} of layer {}, {} tokens) re-dispatched to {}", failed, detail, b.batchId,
                    b.expert, b.layer, b.count, b.current());
            return true;
        }
        // Every other replica was unreachable (and is quarantined now): the batch stays with the failed one.
        for (int i = before; i < b.attempts; i++) {
            b.tried[i] = null;
        }
        b.attempts = before;
        return false;
    }

    private void fail(int group, PendingBatch b, String why) {
        if (!b.open()) {
            return;
        }
        b.failure = why;
        b.out = null;
        b.current().settled(b.count);
        outstanding[group]--;
    }

    private ExpertUnavailableException unavailable(PendingBatch b, String why) {
        String where = b.attempts == 0
                ? "no expert service hosts expert " + b.expert + " of layer " + b.layer + " (" + why + ")"
                : "expert service " + b.triedIds() + " failed expert " + b.expert + " of layer " + b.layer + ": " + why;
        return new ExpertUnavailableException(b.layer, b.expert, where);
    }

    private ExpertUnavailableException timeout(int group) {
        for (int i = 0; i < pending[group]; i++) {
            PendingBatch b = slots[group][i];
            if (b.open()) {
                return unavailable(b, "no answer to batch " + b.batchId + " within " + timeoutNanos / 1_000_000 + " ms");
            }
        }
        return new ExpertUnavailableException(-1, -1, "expert batches timed out");
    }

    private void clear(int group) {
        for (int i = 0; i < pending[group]; i++) {
            PendingBatch b = slots[group][i];
            if (b.open() && b.holder != null) {
                b.holder.settled(b.count);
            }
            b.clear();
        }
        pending[group] = 0;
        outstanding[group] = 0;
    }

    private void onResult(BatchResultView r) {
        for (int g = 0; g < GROUPS; g++) {
            for (int i = 0; i < pending[g]; i++) {
                if (slots[g][i].batchId == r.batchId() && slots[g][i].open()) {
                    onResult(g, slots[g][i], r);
                    return;
                }
            }
        }
        // An answer to a batch given up on, or a duplicate from a replica that was too slow: dropped.
    }

    private void onResult(int group, PendingBatch b, BatchResultView r) {
        ExpertReplica current = b.current();
        String problem = null;
        if (!r.isOk()) {
            problem = r.errorMessage();
        } else if (r.tokenCount() != b.count || r.hiddenSize() != hidden) {
            problem = "answered " + r.tokenCount() + " x " + r.hiddenSize() + " rows for a batch of " + b.count
                    + " x " + hidden;
        }
        if (problem != null) {
            LOG.warn("{} answered an error for batch {}: {}", current, r.batchId(), problem);
            if (!moveOn(b, current, FailReason.ERROR_ANSWER, problem, System.nanoTime())) {
                fail(group, b, problem);
            }
            return;
        }
        r.copyRowsTo(b.out, (long) b.row * hidden);
        if (b.attempts == 1) {
            current.answered();
        }
        current.settled(b.count);
        // The output is filled: later duplicates (a slow replica answering after all) must not touch it.
        b.out = null;
        outstanding[group]--;
    }

    @Override
    public void close() {
        publications.close();
        replies.close();
        if (placementOwner != null) {
            try {
                placementOwner.close();
            } catch (Exception e) {
                LOG.warn("closing {}: {}", placementOwner, e.toString());
            }
        }
    }
}
