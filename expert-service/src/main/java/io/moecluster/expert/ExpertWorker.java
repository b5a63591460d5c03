package io.moecluster.expert;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.IdRanges;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.BatchResultWriter;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.PollingThread;
import io.moecluster.transport.ReplyWriters;
import io.moecluster.transport.TokenBatchView;
import io.moecluster.transport.TransportException;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The serving loop of an expert service: reads TokenBatches from its Aeron stream, runs the
 * expert on its {@link ExpertBank}, and answers on the sender's reply stream with the rows scaled
 * by their routing weights, in the element type they came in. A batch it cannot serve (an expert
 * it does not host, more rows than it sized for, a different hidden size) is answered with an
 * ERROR naming why, so the router fails the request at once instead of timing out.
 *
 * <p>One thread polls and computes; the computation itself spreads over the bank's worker pool.
 */
public final class ExpertWorker implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertWorker.class);

    private final String id;
    private final String channel;
    private final int streamId;
    private final ModelConfig config;
    private final ExpertBank bank;
    private final int senderId;
    private final Subscription subscription;
    private final MessagePoller poller;
    private final ReplyWriters replies;
    private final IntFunction<String> replyChannels;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in;
    private final MemorySegment out;
    private final MemorySegment weights;
    private final PollingThread thread;
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong tokens = new AtomicLong();
    private final AtomicLongArray tokensPerExpert;
    private final AtomicLong errors = new AtomicLong();
    private volatile long lastBatchNanos = System.nanoTime();
    private Tracer tracer;

    /**
     * @param channel where this service subscribes
     * @param replyChannels the channel to answer each sender id on
     */
    public ExpertWorker(String id, Aeron aeron, String channel, int streamId, ModelConfig config, ExpertBank bank,
                        int senderId, IntFunction<String> replyChannels) {
        this.id = id;
        this.channel = channel;
        this.streamId = streamId;
        this.config = config;
        this.bank = bank;
        this.senderId = senderId;
        this.subscription = aeron.addSubscription(channel, streamId);
        this.poller = new MessagePoller(subscription).onTokenBatch(this::serve);
        long floats = (long) bank.maxRows() * config.hiddenSize();
        this.in = arena.allocate(floats * 4, 64);
        this.out = arena.allocate(floats * 4, 64);
        this.weights = arena.allocate((long) bank.maxRows() * 4, 64);
        this.tokensPerExpert = new AtomicLongArray(bank.experts().length());
        this.replies = new ReplyWriters(aeron, Duration.ofSeconds(2));
        this.replyChannels = replyChannels;
        this.thread = new PollingThread("expert-" + id, poller, 8);
    }

    /**
     * Traces each batch whose TokenBatch carries a sampled trace context: a SERVER span
     * {@code moe.expert.batch}, child of the router's dispatch span. Set before {@link #start()}.
     */
    public ExpertWorker tracing(ServiceTracing tracing) {
        this.tracer = tracing.enabled() ? tracing.tracer() : null;
        return this;
    }

    public ExpertWorker start() {
        thread.start();
        return this;
    }

    public String id() {
        return id;
    }

    public String describe() {
        return "expert-service " + id + " hosting experts " + IdRanges.format(bank.experts()) + " of layers "
                + bank.firstLayer() + "-" + bank.lastLayer() + " on " + channel + " stream " + streamId;
    }

    public long batchesServed() {
        return batches.get();
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
        return errors.get();
    }

    public long malformedDropped() {
        return poller.counter().total();
    }

    private void serve(TokenBatchView b) {
        if (tracer == null || !BinaryTraceContext.isSampled(b.traceFlags())) {
            onBatch(b);
            return;
        }
        Span span = tracer.spanBuilder("moe.expert.batch")
                .setParent(BinaryTraceContext.remoteContext(b.traceIdHigh(), b.traceIdLow(),
                        b.spanId(), b.traceFlags()))
                .setSpanKind(SpanKind.SERVER)
                .setAttribute(ServiceTracing.LAYER, (long) b.layer())
                .setAttribute(ServiceTracing.EXPERT_ID, (long) b.expertId())
                .setAttribute(ServiceTracing.TOKEN_COUNT, (long) b.tokenCount())
                .setAttribute(ServiceTracing.BYTES, (long) b.payloadLength())
                .setAttribute(ServiceTracing.BATCH_ID, b.batchId())
                .startSpan();
        long errorsBefore = errors.get();
        try (Scope ignored = span.makeCurrent()) {
            onBatch(b);
        } finally {
            if (errors.get() != errorsBefore) {
                span.setStatus(StatusCode.ERROR, "answered with an error");
            }
            span.end();
        }
    }

    private void onBatch(TokenBatchView b) {
        lastBatchNanos = System.nanoTime();
        String problem = check(b);
        if (problem != null) {
            errors.incrementAndGet();
            replyError(b, problem);
            return;
        }
        int n = b.tokenCount();
        b.copyRowsTo(in, 0);
        b.copyWeightsTo(weights, 0);
        try {
            bank.run(b.layer(), b.expertId(), in, 0, n, weights, 0, out, 0);
        } catch (RuntimeException e) {
            errors.incrementAndGet();
            LOG.warn("{}: expert {} of layer {} failed: {}", id, b.expertId(), b.layer(), e.toString());
            replyError(b, e.toString());
            return;
        }
        batches.incrementAndGet();
        tokens.addAndGet(n);
        tokensPerExpert.addAndGet(b.expertId(), n);
        try {
            replyWriter(b).sendRows(b.batchId(), b.layer(), b.expertId(), senderId, out, 0, n,
                    config.hiddenSize(), b.elementType());
        } catch (TransportException e) {
            unanswered(b, e);
        }
    }

    private BatchResultWriter replyWriter(TokenBatchView b) {
        return replies.to(replyChannels.apply(b.senderId()), b.replyStreamId());
    }

    private void replyError(TokenBatchView b, String message) {
        try {
            replyWriter(b).sendError(b.batchId(), b.layer(), b.expertId(), senderId, message);
        } catch (TransportException e) {
            unanswered(b, e);
        }
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

    private void unanswered(TokenBatchView b, TransportException e) {
        // The router gave up or went away; it will time the batch out and fail the request.
        LOG.warn("{}: could not answer batch {} on stream {}: {}", id, b.batchId(), b.replyStreamId(), e.getMessage());
    }

    /**
     * Keeps serving until no batch has arrived for {@code quiet} (the routers have stopped sending
     * here and everything sent is answered), or {@code max} has passed; then returns. Used on a
     * graceful stop, after the service left the registry.
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

    @Override
    public void close() {
        thread.close();
        replies.close();
        subscription.close();
        arena.close();
    }
}
