package io.moecluster.router;

import io.aeron.Aeron;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.DataPlaneSettings;
import io.moecluster.transport.TokenBatchServer;
import io.moecluster.transport.TokenBatchView;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.context.Scope;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;

/**
 * The router-service's data plane: whole-layer MoE requests from attention replicas (their
 * {@code RemoteMoe}) arrive on the router's stream, run through the {@link MoeBlock} (which
 * dispatches to the expert services), and the combined rows go back on the sender's reply stream.
 * An expert failure is answered as an ERROR naming it; the service keeps serving. The polling and
 * answering is a {@link TokenBatchServer} agent ({@link #agent()}).
 */
public final class MoeService implements TokenBatchServer.Handler, AutoCloseable {
    private static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("outcome");

    /** How to build the service; {@link #conclude()} fills the defaults and checks the values. */
    public static final class Context extends DataPlaneSettings<Context> {
        private Aeron aeron;
        private String channel;
        private int streamId = -1;
        private ModelConfig config;
        private MoeBlock moe;
        private int senderId = -1;
        private int maxTokens;
        private IntFunction<String> replyChannels;
        private ServiceTracing tracing = ServiceTracing.off();

        /** The Aeron client (not closed by the service). Required. */
        public Context aeron(Aeron aeron) {
            this.aeron = aeron;
            return this;
        }

        /** Where the router subscribes for MoE requests: its channel and MoE stream. Required. */
        public Context requests(String channel, int streamId) {
            this.channel = channel;
            this.streamId = streamId;
            return this;
        }

        /** The model and the MoE block that serves its layers (the caller closes the block, after the service). Required. */
        public Context moe(ModelConfig config, MoeBlock moe) {
            this.config = config;
            this.moe = moe;
            return this;
        }

        /** The router's sender id in its answers. Required. */
        public Context senderId(int senderId) {
            this.senderId = senderId;
            return this;
        }

        /** The attention replicas' max-batch-tokens: the largest request ({@code --max-batch-tokens}). Required. */
        public Context maxTokens(int maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        /** The channel to answer each attention replica (by sender id) on. Required. */
        public Context replyChannels(IntFunction<String> replyChannels) {
            this.replyChannels = replyChannels;
            return this;
        }

        /**
         * Makes the trace context of each sampled request current while its layer is routed, so the
         * dispatch span under the MoE block is a child of the attention's layer span.
         */
        public Context tracing(ServiceTracing tracing) {
            this.tracing = tracing;
            return this;
        }

        @Override
        protected void concludeSettings() {
            Objects.requireNonNull(aeron, "aeron");
            Objects.requireNonNull(channel, "request channel");
            Objects.requireNonNull(moe, "MoE block");
            Objects.requireNonNull(replyChannels, "reply channels");
            if (streamId < 0 || senderId < 0) {
                throw new IllegalArgumentException("MoE service: request stream and sender id are required, got "
                        + streamId + ", " + senderId);
            }
            requireAtLeast("--max-batch-tokens", maxTokens, 1);
        }
    }

    private final ModelConfig config;
    private final MoeBlock moe;
    private final int maxTokens;
    private final boolean tracing;
    private final TokenBatchServer server;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in;
    private final MemorySegment out;
    private final AtomicLong served = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();

    public MoeService(Context ctx) {
        ctx.conclude();
        this.config = ctx.config;
        this.moe = ctx.moe;
        this.maxTokens = ctx.maxTokens;
        this.tracing = ctx.tracing.enabled();
        this.in = arena.allocate((long) maxTokens * config.hiddenSize() * 4, 64);
        this.out = arena.allocate((long) maxTokens * config.hiddenSize() * 4, 64);
        this.server = new TokenBatchServer("router-moe", ctx.aeron, ctx.channel, ctx.streamId, ctx.replyChannels,
                ctx.senderId, 4, ctx.publicationDeadline(), ctx.dataPlaneAuth(), this);
    }

    /** The agent that polls the router's MoE stream and answers; run it with an AgentRunner. */
    public TokenBatchServer agent() {
        return server;
    }

    public MoeBlock moe() {
        return moe;
    }

    public long requestsServed() {
        return served.get();
    }

    public long requestsFailed() {
        return failed.get();
    }

    public long malformedDropped() {
        return server.malformedDropped();
    }

    /** The MoE requests this service served, by outcome ({@code moe_router_moe_requests_total}). */
    public void registerMetrics(Meter meter) {
        Attributes ok = Attributes.of(OUTCOME, "ok");
        Attributes failure = Attributes.of(OUTCOME, "failed");
        meter.counterBuilder("moe.router.moe_requests")
                .setDescription("Whole-layer MoE requests from attention replicas, by outcome")
                .buildWithCallback(m -> {
                    m.record(requestsServed(), ok);
                    m.record(requestsFailed(), failure);
                });
    }

    @Override
    public void serve(TokenBatchView b, TokenBatchServer.Reply reply) {
        String problem = check(b);
        if (problem != null) {
            failed.incrementAndGet();
            reply.error(problem);
            return;
        }
        b.copyRowsTo(in, 0);
        try {
            if (tracing && BinaryTraceContext.isSampled(b.traceFlags())) {
                try (Scope ignored = BinaryTraceContext
                        .remoteContext(b.traceIdHigh(), b.traceIdLow(), b.spanId(), b.traceFlags()).makeCurrent()) {
                    moe.forward(b.layer(), in, b.tokenCount(), out);
                }
            } else {
                moe.forward(b.layer(), in, b.tokenCount(), out);
            }
        } catch (RuntimeException e) {
            failed.incrementAndGet();
            throw e; // answered as an ERROR carrying the message, and logged, by the server
        }
        served.incrementAndGet();
        reply.rows(out, 0, b.tokenCount(), config.hiddenSize(), b.elementType());
    }

    private String check(TokenBatchView b) {
        if (b.expertId() != TokenBatchView.WHOLE_LAYER) {
            return "the router takes whole-layer requests (expert id -1), got expert " + b.expertId();
        }
        if (b.hiddenSize() != config.hiddenSize()) {
            return "hidden size " + b.hiddenSize() + " does not match the model's " + config.hiddenSize();
        }
        if (b.tokenCount() > maxTokens) {
            return b.tokenCount() + " tokens exceed the router's --max-batch-tokens " + maxTokens;
        }
        if (b.layer() < 0 || b.layer() >= config.numLayers() || !config.isMoeLayer(b.layer())) {
            return "layer " + b.layer() + " is not a MoE layer of this model";
        }
        return null;
    }

    /** Frees the row buffers; only after the agent has stopped. */
    @Override
    public void close() {
        arena.close();
    }
}
