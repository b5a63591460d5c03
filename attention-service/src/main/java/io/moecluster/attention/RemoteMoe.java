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
    private long awaiting;
    private MemorySegment awaitingOut;
    private int awaitingTokens;
    private String error;
    private boolean answered;

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
        if (tracing == null) {
            exchange(layer, input, tokens, output);
            return;
        }
        Span span = LayerSpans.begin(tracing, writer, layer, tokens, hidden);
        if (span == null) {
            exchange(layer, input, tokens, output);
            return;
        }
        try (Scope ignored = span.makeCurrent()) {
            exchange(layer, input, tokens, output);
        } catch (RuntimeException | Error e) {
            span.recordException(e);
            span.setStatus(StatusCode.ERROR, String.valueOf(e.getMessage()));
            throw e;
        } finally {
            span.end();
        }
    }

    private void exchange(int layer, MemorySegment input, int tokens, MemorySegment output) {
        long batchId = nextBatchId++;
        awaiting = batchId;
        awaitingOut = output;
        awaitingTokens = tokens;
        answered = false;
        error = null;
        try {
            writer.send(batchId, layer, TokenBatchView.WHOLE_LAYER, senderId, replyStreamId, input, 0, tokens, hidden,
                    ElementType.F32);
        } catch (TransportException e) {
            throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER,
                    "router-service unreachable: " + e.getMessage());
        }
        try {
            if (!awaiter.await(this, System.nanoTime() + timeoutNanos)) {
                throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, "router-service did not answer layer "
                        + layer + " (batch " + batchId + ") within " + timeoutNanos / 1_000_000 + " ms");
            }
            if (error != null) {
                throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, error);
            }
        } finally {
            awaiting = 0;
            awaitingOut = null;
        }
    }

    @Override
    public boolean done() {
        return answered;
    }

    /**
     * Nothing arrived: a router-service that went away (its subscription is gone: stopped, killed
     * and timed out by the driver, or its Aeron client lost) fails the layer now instead of at
     * the layer's deadline.
     */
    @Override
    public void onQuiet(long nowNanos) {
        if (!answered && awaiting != 0 && !writer.publisher().publication().isConnected()) {
            error = "router-service disconnected while layer batch " + awaiting + " was out";
            answered = true;
        }
    }

    private void onResult(BatchResultView r) {
        if (r.batchId() != awaiting || answered) {
            return; // an answer to a request already given up on
        }
        if (!r.isOk()) {
            error = r.errorMessage();
        } else if (r.tokenCount() != awaitingTokens || r.hiddenSize() != hidden) {
            error = "router answered " + r.tokenCount() + " x " + r.hiddenSize() + " rows for " + awaitingTokens
                    + " x " + hidden;
        } else {
            r.copyRowsTo(awaitingOut, 0);
        }
        answered = true;
    }

    @Override
    public void close() {
        writer.publisher().publication().close();
        replies.close();
    }
}
