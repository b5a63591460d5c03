package io.moecluster.expert;

import io.aeron.Aeron;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.discovery.IdRanges;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.TokenBatchServer;
import io.moecluster.transport.TokenBatchView;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Scope;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.IntFunction;

/**
 * What an expert service does with a TokenBatch: runs the expert on its {@link ExpertBank} and
 * answers with the rows scaled by their routing weights, in the element type they came in. A
 * batch it cannot serve (an expert it does not host, more rows than it sized for, a different
 * hidden size) is answered with an ERROR naming why. The polling and answering is the
 * {@link TokenBatchServer} agent this handler sits in ({@link #agent()}).
 */
public final class ExpertWorker implements TokenBatchServer.Handler, AutoCloseable {
    private final String id;
    private final String channel;
    private final int streamId;
    private final ModelConfig config;
    private final ExpertBank bank;
    private final TokenBatchServer server;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in;
    private final MemorySegment out;
    private final MemorySegment weights;
    private final AtomicLong tokens = new AtomicLong();
    private final AtomicLongArray tokensPerExpert;
    private final Tracer tracer;
    private volatile long lastBatchNanos = System.nanoTime();

    /**
     * @param channel where this service subscribes
     * @param senderId this service's id in its answers
     * @param replyChannels the channel to answer each sender id on
     * @param tracing spans for batches whose TokenBatch carries a sampled trace context
     */
    public ExpertWorker(String id, Aeron aeron, String channel, int streamId, ModelConfig config, ExpertBank bank,
                        int senderId, IntFunction<String> replyChannels, Duration publicationDeadline,
                        DataPlaneAuth auth, ServiceTracing tracing) {
        this.id = id;
        this.channel = channel;
        this.streamId = streamId;
        this.config = config;
        this.bank = bank;
        long floats = (long) bank.maxRows() * config.hiddenSize();
        this.in = arena.allocate(floats * 4, 64);
        this.out = arena.allocate(floats * 4, 64);
        this.weights = arena.allocate((long) bank.maxRows() * 4, 64);
        this.tokensPerExpert = new AtomicLongArray(config.expertSlots());
        this.tracer = tracing.enabled() ? tracing.tracer() : null;
        this.server = new TokenBatchServer("expert-" + id, aeron, channel, streamId, replyChannels, senderId, 8,
                publicationDeadline, auth, this);
    }

    /** The agent that polls this service's stream and answers; run it with an AgentRunner. */
    public TokenBatchServer agent() {
        return server;
    }

    public String id() {
        return id;
    }

    public String describe() {
        return "expert-service " + id + " hosting experts " + IdRanges.format(bank.experts()) + " of layers "
                + bank.firstLayer() + "-" + bank.lastLayer() + " on " + channel + " stream " + streamId;
    }

    public long batchesServed() {
        return server.answered();
    }

    public long tokensServed() {
        return tokens.get();
    }

    /** Tokens this service ran through expert {@code expert}, all layers. */
    public long tokensServed(int expert) {
        return expert < tokensPerExpert.length() ? tokensPerExpert.get(expert) : 0;
    }

    public BitSet experts() {
        return bank.experts();
    }

    public long errorsAnswered() {
        return server.errorsAnswered();
    }

    public long malformedDropped() {
        return server.malformedDropped();
    }

    /** Batches dropped because their authTag did not verify (also counted in {@link #malformedDropped()}). */
    public long unauthenticatedDropped() {
        return server.unauthenticatedDropped();
    }

    @Override
    public void serve(TokenBatchView b, TokenBatchServer.Reply reply) {
        lastBatchNanos = System.nanoTime();
        if (tracer == null || !BinaryTraceContext.isSampled(b.traceFlags())) {
            compute(b, reply);
            return;
        }
        Span span = tracer.spanBuilder("moe.expert.batch")
                .setParent(BinaryTraceContext.remoteContext(b.traceIdHigh(), b.traceIdLow(), b.spanId(), b.traceFlags()))
                .setSpanKind(SpanKind.SERVER)
                .setAttribute(ServiceTracing.LAYER, (long) b.layer())
                .setAttribute(ServiceTracing.EXPERT_ID, (long) b.expertId())
                .setAttribute(ServiceTracing.TOKEN_COUNT, (long) b.tokenCount())
                .setAttribute(ServiceTracing.BYTES, (long) b.payloadLength())
                .setAttribute(ServiceTracing.BATCH_ID, b.batchId())
                .startSpan();
        try (Scope ignored = span.makeCurrent()) {
            compute(b, reply);
        } finally {
            if (reply.isError()) {
                span.setStatus(StatusCode.ERROR, "answered with an error");
            }
            span.end();
        }
    }

    private void compute(TokenBatchView b, TokenBatchServer.Reply reply) {
        String problem = check(b);
        if (problem != null) {
            reply.error(problem);
            return;
        }
        int n = b.tokenCount();
        b.copyRowsTo(in, 0);
        b.copyWeightsTo(weights, 0);
        bank.run(b.layer(), b.expertId(), in, 0, n, weights, 0, out, 0);
        tokens.addAndGet(n);
        tokensPerExpert.addAndGet(b.expertId(), n);
        reply.rows(out, 0, n, config.hiddenSize(), b.elementType());
    }

    private String check(TokenBatchView b) {
        if (b.hiddenSize() != config.hiddenSize()) {
            return "hidden size " + b.hiddenSize() + " does not match the model's " + config.hiddenSize();
        }
        if (!bank.hosts(b.layer(), b.expertId())) {
            return "expert " + b.expertId() + " of layer " + b.layer() + " is not hosted by " + describe();
        }
        if (b.tokenCount() > bank.maxRows()) {
            return b.tokenCount() + " tokens exceed this service's --max-rows " + bank.maxRows();
        }
        if (!b.hasWeights()) {
            return "batch " + b.batchId() + " carries no routing weights";
        }
        return null;
    }

    /**
     * Waits until no batch has arrived for {@code quiet} (the routers have stopped sending here and
     * everything sent is answered), or {@code max} has passed. Used on a graceful stop, after the
     * service left the registry, while the agent keeps serving.
     *
     * @return true if it went quiet, false if batches were still arriving at {@code max}
     */
    public boolean drain(Duration quiet, Duration max) throws InterruptedException {
        long deadline = System.nanoTime() + max.toNanos();
        while (System.nanoTime() - lastBatchNanos < quiet.toNanos()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    /** Frees the row buffers; only after the agent has stopped. */
    @Override
    public void close() {
        arena.close();
    }
}
