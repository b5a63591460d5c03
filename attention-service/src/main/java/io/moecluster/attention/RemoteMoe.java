package io.moecluster.attention;

import io.moecluster.core.moe.ExpertUnavailableException;
import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.core.attention.FeedForward;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.BatchResultView;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.IdleStrategies;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchView;
import io.moecluster.transport.TokenBatchWriter;
import io.moecluster.transport.TransportException;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import org.agrona.concurrent.IdleStrategy;

/**
 * The attention side of a standalone router: each MoE layer's normalised hidden states go to the
 * router-service over Aeron (a TokenBatch with expert id -1), and the combined output comes back
 * on this replica's reply stream. Rows travel as f32 so that greedy tokens match the
 * single-process engine exactly.
 */
public final class RemoteMoe implements FeedForward, AutoCloseable {
    private final int hidden;
    private final int senderId;
    private final int replyStreamId;
    private final long timeoutNanos;
    private final TokenBatchWriter writer;
    private final Subscription replies;
    private final MessagePoller poller;
    private final IdleStrategy idle = IdleStrategies.dataPlane();
    private long nextBatchId = 1;
    private long awaiting;
    private MemorySegment awaitingOut;
    private int awaitingTokens;
    private String error;
    private boolean answered;
    private ServiceTracing tracing;

    /**
     * @param routerChannel where the router subscribes
     * @param replyChannel where this replica subscribes for the router's answers
     */
    public RemoteMoe(Aeron aeron, String routerChannel, int routerStreamId, String replyChannel, int replyStreamId,
                     int senderId, int hidden, Duration timeout) {
        this.hidden = hidden;
        this.senderId = senderId;
        this.replyStreamId = replyStreamId;
        this.timeoutNanos = timeout.toNanos();
        this.writer = new TokenBatchWriter(new BoundedPublisher(aeron.addPublication(routerChannel, routerStreamId),
                IdleStrategies.backoff(), Duration.ofSeconds(2)));
        this.replies = aeron.addSubscription(replyChannel, replyStreamId);
        this.poller = new MessagePoller(replies).onBatchResult(this::onResult);
    }

    /**
     * Traces each layer: a CLIENT span {@code moe.layer} under the current step when the step has
     * per-layer spans, its context in the TokenBatch; otherwise the step's context goes with the
     * sampled flag cleared, so the router and the experts make no spans for it. Set before use.
     */
    public RemoteMoe tracing(ServiceTracing tracing) {
        this.tracing = tracing.enabled() ? tracing : null;
        return this;
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (tracing == null) {
            exchange(layer, input, tokens, output);
            return;
        }
        Span span = traceLayer(layer, tokens);
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

    /** Sets the trace context of the next TokenBatch; returns the layer span, or null when there is none. */
    private Span traceLayer(int layer, int tokens) {
        Context parent = Context.current();
        SpanContext step = Span.fromContext(parent).getSpanContext();
        if (!step.isValid()) {
            return null;
        }
        if (!step.isSampled() || !Boolean.TRUE.equals(parent.get(ServiceTracing.LAYER_SPANS))) {
            writer.trace(BinaryTraceContext.traceIdHigh(step), BinaryTraceContext.traceIdLow(step),
                    BinaryTraceContext.spanId(step), 0);
            return null;
        }
        Span span = tracing.tracer().spanBuilder("moe.layer")
                .setParent(parent)
                .setSpanKind(SpanKind.CLIENT)
                .setAttribute(ServiceTracing.LAYER, (long) layer)
                .setAttribute(ServiceTracing.TOKEN_COUNT, (long) tokens)
                .setAttribute(ServiceTracing.BYTES, 4L * tokens * hidden)
                .startSpan();
        SpanContext c = span.getSpanContext();
        writer.trace(BinaryTraceContext.traceIdHigh(c), BinaryTraceContext.traceIdLow(c), BinaryTraceContext.spanId(c),
                BinaryTraceContext.flags(c));
        return span;
    }

    private void exchange(int layer, MemorySegment input, int tokens, MemorySegment output) {
        long batchId = nextBatchId++;
        awaiting = batchId;
        awaitingOut = output;
        awaitingTokens = tokens;
        answered = false;
        error = null;
        try {
            writer.send(batchId, layer, TokenBatchView.WHOLE_LAYER, senderId, replyStreamId, input, 0, tokens, hidden, ElementType.F32);
        } catch (TransportException e) {
            throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, "router-service unreachable: " + e.getMessage());
        }
        long deadline = System.nanoTime() + timeoutNanos;
        try {
            while (!answered) {
                int work = poller.poll(8);
                if (answered) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, "router-service did not answer layer "
                            + layer + " (batch " + batchId + ") within " + timeoutNanos / 1_000_000 + " ms");
                }
                idle.idle(work);
            }
            if (error != null) {
                throw new ExpertUnavailableException(layer, TokenBatchView.WHOLE_LAYER, error);
            }
        } finally {
            awaiting = 0;
            awaitingOut = null;
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
