package io.moecluster.attention;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.moe.ExpertUnavailableException;
import io.moecluster.sbe.ElementType;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.BatchResultView;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.DataPlaneSettings;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.ReplyAwaiter;
import io.moecluster.transport.TokenBatchView;
import io.moecluster.transport.TokenBatchWriter;
import io.moecluster.transport.TransportException;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Scope;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Objects;

/**
 * The attention side of a standalone router: each MoE layer's normalised hidden states go to the
 * router-service over Aeron (a TokenBatch with expert id {@link TokenBatchView#WHOLE_LAYER}), and
 * the combined output comes back on this replica's reply stream. Rows travel as f32 so that
 * greedy tokens match the single-process engine exactly.
 *
 * <p>Up to two layers may be out at once, one per micro-batch slot ({@link #submit} and
 * {@link #await}): the attention side computes one micro-batch while the router-service serves
 * the other's layer (the ping-pong pipeline of {@code --micro-batches 2}).
 */
public final class RemoteMoe implements FeedForward, ReplyAwaiter.Progress, AutoCloseable {
    /** How to reach the router-service; {@link #conclude()} fills the defaults and checks the values. */
    public static final class Context extends DataPlaneSettings<Context> {
        private Aeron aeron;
        private String routerChannel;
        private int routerStreamId = -1;
        private String replyChannel;
        private int replyStreamId = -1;
        private int senderId = -1;
        private int hiddenSize;
        private Duration timeout = Duration.ofSeconds(30);
        private ServiceTracing tracing = ServiceTracing.off();

        /** The Aeron client (not closed by RemoteMoe). Required. */
        public Context aeron(Aeron aeron) {
            this.aeron = aeron;
            return this;
        }

        /** Where the router-service subscribes for MoE requests: its channel and stream. Required. */
        public Context router(String channel, int streamId) {
            this.routerChannel = channel;
            this.routerStreamId = streamId;
            return this;
        }

        /** Where this replica subscribes for the router's answers: its channel and reply stream. Required. */
        public Context replies(String channel, int streamId) {
            this.replyChannel = channel;
            this.replyStreamId = streamId;
            return this;
        }

        /** This attention replica's sender id (the router answers on its channel). Required. */
        public Context senderId(int senderId) {
            this.senderId = senderId;
            return this;
        }

        /** The model's hidden size. Required. */
        public Context hiddenSize(int hiddenSize) {
            this.hiddenSize = hiddenSize;
            return this;
        }

        /** How long one MoE layer may take before the step fails ({@code --moe-timeout-ms}); default 30 s. */
        public Context timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /**
         * Traces each layer: a CLIENT span {@code moe.layer} under the current step when the step
         * has per-layer spans, its context in the TokenBatch; otherwise the step's context goes with
         * the sampled flag cleared, so the router and the experts make no spans for it.
         */
        public Context tracing(ServiceTracing tracing) {
            this.tracing = tracing;
            return this;
        }

        @Override
        protected void concludeSettings() {
            Objects.requireNonNull(aeron, "aeron");
            Objects.requireNonNull(routerChannel, "router channel");
            Objects.requireNonNull(replyChannel, "reply channel");
            if (routerStreamId < 0 || replyStreamId < 0 || senderId < 0 || hiddenSize < 1) {
                throw new IllegalArgumentException("router client: router stream, reply stream, sender id and hidden size "
                        + "are required, got " + routerStreamId + ", " + replyStreamId + ", " + senderId + ", " + hiddenSize);
            }
            requirePositiveMillis("--moe-timeout-ms", timeout);
        }
    }

    private final int hidden;
    private final int senderId;
    private final int replyStreamId;
    private final long timeoutNanos;
    private final TokenBatchWriter writer;
    private final Subscription replies;
    private final ReplyAwaiter awaiter;
    private final ServiceTracing tracing;
    private long nextBatchId = 1;
    // Per micro-batch slot (FeedForward#submit): the request in flight (batch id 0: none), where its
    // rows go, and how it ended. Answers of both slots arrive on the one reply stream, in any order.
    private final long[] batchIds = new long[MAX_IN_FLIGHT];
    private final int[] layers = new int[MAX_IN_FLIGHT];
    private final MemorySegment[] outputs = new MemorySegment[MAX_IN_FLIGHT];
    private final int[] tokenCounts = new int[MAX_IN_FLIGHT];
    private final long[] deadlines = new long[MAX_IN_FLIGHT];
    private final String[] errors = new String[MAX_IN_FLIGHT];
    private final boolean[] answered = new boolean[MAX_IN_FLIGHT];
    private final Span[] spans = new Span[MAX_IN_FLIGHT];
    private int waitingFor;

    public RemoteMoe(Context settings) {
        settings.conclude();
        this.hidden = settings.hiddenSize;
        this.senderId = settings.senderId;
        this.replyStreamId = settings.replyStreamId;
        this.timeoutNanos = settings.timeout.toNanos();
        this.tracing = settings.tracing.enabled() ? settings.tracing : null;
        this.writer = new TokenBatchWriter(new BoundedPublisher(
                settings.aeron.addPublication(settings.routerChannel, settings.routerStreamId),
                IdleStrategies.backoff(), settings.publicationDeadline()), settings.dataPlaneAuth());
        this.replies = settings.aeron.addSubscription(settings.replyChannel, settings.replyStreamId);
        this.awaiter = new ReplyAwaiter(new MessagePoller(replies, settings.dataPlaneAuth()).onBatchResult(this::onResult),
                IdleStrategies.parse(settings.idleStrategy()), 8);
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        submit(0, layer, input, tokens, output);
        await(0);
    }

    /** The layer goes to the router now; its answer is collected by {@link #await} (by either slot's wait). */
    @Override
    public void submit(int slot, int layer, MemorySegment input, int tokens, MemorySegment output) {
        Span span = tracing == null ? null : LayerSpans.begin(tracing, writer, layer, tokens, hidden);
        if (span == null) {
            send(slot, layer, input, tokens, output);
            return;
        }
        try (Scope ignored = span.makeCurrent()) {
            send(slot, layer, input, tokens, output);
        } catch (RuntimeException | Error e) {
            end(span, e);
            throw e;
        }
        spans[slot] = span;
    }

    private void send(int slot, int layer, MemorySegment input, int tokens, MemorySegment output) {
        long batchId = nextBatchId++;
        batchIds[slot] = batchId;
        layers[slot] = layer;
        outputs[slot] = output;
        tokenCounts[slot] = tokens;
        answered[slot] = false;
        errors[slot] = null;
        deadlines[slot] = System.nanoTime() + timeoutNanos;
        try {
            writer.send(batchId, layer, TokenBatchView.WHOLE_LAYER, senderId, replyStreamId, input, 0, tokens, hidden,
                    ElementType.F32);
        } catch (TransportException e) {
            abandonAll();
            throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER,
                    "router-service unreachable: " + e.getMessage());
        }
    }

    @Override
    public void await(int slot) {
        long batchId = batchIds[slot];
        if (batchId == 0) {
            return;
        }
        int layer = layers[slot];
        Span span = spans[slot];
        spans[slot] = null;
        try {
            waitingFor = slot;
            if (!awaiter.await(this, deadlines[slot])) {
                throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, "router-service did not answer layer "
                        + layer + " (batch " + batchId + ") within " + timeoutNanos / 1_000_000 + " ms");
            }
            if (errors[slot] != null) {
                throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, errors[slot]);
            }
        } catch (RuntimeException | Error e) {
            if (span != null) {
                end(span, e);
                span = null;
            }
            abandonAll(); // the step fails: the other micro-batch's answer, should it come, goes nowhere
            throw e;
        } finally {
            release(slot);
            if (span != null) {
                span.end();
            }
        }
    }

    @Override
    public boolean overlaps() {
        return true;
    }

    private void abandonAll() {
        for (int slot = 0; slot < MAX_IN_FLIGHT; slot++) {
            release(slot);
            if (spans[slot] != null) {
                spans[slot].end();
                spans[slot] = null;
            }
        }
    }

    private void release(int slot) {
        batchIds[slot] = 0;
        outputs[slot] = null;
    }

    private static void end(Span span, Throwable e) {
        span.recordException(e);
        span.setStatus(StatusCode.ERROR, String.valueOf(e.getMessage()));
        span.end();
    }

    @Override
    public boolean done() {
        return answered[waitingFor];
    }

    /**
     * Nothing arrived: a router-service that went away (its subscription is gone: stopped, killed
     * and timed out by the driver, or its Aeron client lost) fails the layers out now instead of at
     * their deadlines.
     */
    @Override
    public void onQuiet(long nowNanos) {
        if (writer.publisher().publication().isConnected()) {
            return;
        }
        for (int slot = 0; slot < MAX_IN_FLIGHT; slot++) {
            if (batchIds[slot] != 0 && !answered[slot]) {
                errors[slot] = "router-service disconnected while layer batch " + batchIds[slot] + " was out";
                answered[slot] = true;
            }
        }
    }

    private void onResult(BatchResultView r) {
        int slot = -1;
        for (int s = 0; s < MAX_IN_FLIGHT; s++) {
            if (batchIds[s] == r.batchId() && !answered[s]) {
                slot = s;
            }
        }
        if (slot < 0) {
            return; // an answer to a request already given up on
        }
        if (!r.isOk()) {
            errors[slot] = r.errorMessage();
        } else if (r.tokenCount() != tokenCounts[slot] || r.hiddenSize() != hidden) {
            errors[slot] = "router answered " + r.tokenCount() + " x " + r.hiddenSize() + " rows for " + tokenCounts[slot]
                    + " x " + hidden;
        } else {
            r.copyRowsTo(outputs[slot], 0);
        }
        answered[slot] = true;
    }

    @Override
    public void close() {
        writer.publisher().publication().close();
        replies.close();
    }
}
