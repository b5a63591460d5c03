package io.moecluster.router;


import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.BatchResultWriter;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.PollingThread;
import io.moecluster.transport.ReplyWriters;
import io.moecluster.transport.TokenBatchView;
import io.moecluster.transport.TransportException;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.context.Scope;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router-service's data-plane loop: whole-layer MoE requests from attention replicas
 * ({@link RemoteMoe}) arrive on the router's stream, run through the {@link MoeBlock} (which
 * dispatches to expert services), and the combined rows go back on the sender's reply stream.
 * An expert failure is answered as an ERROR naming it; the loop keeps serving.
 */
public final class MoeService implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MoeService.class);
    private static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("outcome");

    private final String channel;
    private final ModelConfig config;
    private final MoeBlock router;
    private final int senderId;
    private final int maxTokens;
    private final Subscription requests;
    private final MessagePoller poller;
    private final ReplyWriters replies;
    private final IntFunction<String> replyChannels;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in;
    private final MemorySegment out;
    private final PollingThread thread;
    private final AtomicLong served = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private boolean tracing;

    /**
     * @param channel where the router subscribes for MoE requests
     * @param replyChannels the channel to answer each attention replica (by sender id) on
     */
    public MoeService(Aeron aeron, String channel, int streamId, ModelConfig config, MoeBlock router, int senderId,
                      int maxTokens, IntFunction<String> replyChannels) {
        this.channel = channel;
        this.config = config;
        this.router = router;
        this.senderId = senderId;
        this.maxTokens = maxTokens;
        this.requests = aeron.addSubscription(channel, streamId);
        this.poller = new MessagePoller(requests).onTokenBatch(this::onRequest);
        this.in = arena.allocate((long) maxTokens * config.hiddenSize() * 4, 64);
        this.out = arena.allocate((long) maxTokens * config.hiddenSize() * 4, 64);
        this.replies = new ReplyWriters(aeron, Duration.ofSeconds(2));
        this.replyChannels = replyChannels;
        this.thread = new PollingThread("router-moe", poller, 4);
    }

    /**
     * Makes the trace context of each sampled request current while its layer is routed, so the
     * {@link TracedExpertDispatcher} under the router parents its dispatch span to the attention's
     * layer span. Set before {@link #start()}.
     */
    public MoeService tracing(ServiceTracing tracing) {
        this.tracing = tracing.enabled();
        return this;
    }

    public MoeService start() {
        thread.start();
        return this;
    }

    public MoeBlock router() {
        return router;
    }

    public long requestsServed() {
        return served.get();
    }

    public long requestsFailed() {
        return failed.get();
    }

    public long malformedDropped() {
        return poller.counter().total();
    }

    /** The MoE requests this loop served, by outcome ({@code moe_router_moe_requests_total}). */
    public void registerMetrics(Meter meter) {
        Attributes ok = Attributes.of(OUTCOME, "ok");
        Attributes failed = Attributes.of(OUTCOME, "failed");
        meter.counterBuilder("moe.router.moe_requests")
                .setDescription("Whole-layer MoE requests from attention replicas, by outcome")
                .buildWithCallback(m -> {
                    m.record(requestsServed(), ok);
                    m.record(requestsFailed(), failed);
                });
    }

    private void onRequest(TokenBatchView b) {
        String problem = null;
        if (b.expertId() != TokenBatchView.WHOLE_LAYER) {
            problem = "the router takes whole-layer requests (expert id -1), got expert " + b.expertId();
        } else if (b.hiddenSize() != config.hiddenSize()) {
            problem = "hidden size " + b.hiddenSize() + " does not match the model's " + config.hiddenSize();
        } else if (b.tokenCount() > maxTokens) {
            problem = b.tokenCount() + " tokens exceed the router's --max-batch-tokens " + maxTokens;
        } else if (b.layer() < 0 || b.layer() >= config.numLayers() || !config.isMoeLayer(b.layer())) {
            problem = "layer " + b.layer() + " is not a MoE layer of this model";
        }
        if (problem == null) {
            try {
                b.copyRowsTo(in, 0);
                if (tracing && BinaryTraceContext.isSampled(b.traceFlags())) {
                    try (Scope ignored = BinaryTraceContext
                            .remoteContext(b.traceIdHigh(), b.traceIdLow(), b.spanId(), b.traceFlags()).makeCurrent()) {
                        router.forward(b.layer(), in, b.tokenCount(), out);
                    }
                } else {
                    router.forward(b.layer(), in, b.tokenCount(), out);
                }
            } catch (RuntimeException e) {
                problem = e.getMessage() == null ? e.toString() : e.getMessage();
                LOG.warn("MoE request of layer {} from sender {} failed: {}", b.layer(), b.senderId(), problem);
            }
        }
        BatchResultWriter w;
        try {
            w = replies.to(replyChannels.apply(b.senderId()), b.replyStreamId());
        } catch (IllegalArgumentException unknownSender) {
            LOG.warn("MoE request {} from unknown sender {} dropped", b.batchId(), b.senderId());
            return;
        }
        try {
            if (problem != null) {
                failed.incrementAndGet();
                w.sendError(b.batchId(), b.layer(), b.expertId(), senderId, problem);
            } else {
                served.incrementAndGet();
                w.sendRows(b.batchId(), b.layer(), b.expertId(), senderId, out, 0, b.tokenCount(), config.hiddenSize(),
                        b.elementType());
            }
        } catch (TransportException e) {
            LOG.warn("could not answer MoE request {} on stream {}: {}", b.batchId(), b.replyStreamId(), e.getMessage());
        }
    }

    @Override
    public void close() {
        thread.close();
        replies.close();
        requests.close();
        router.close();
        arena.close();
    }
}
