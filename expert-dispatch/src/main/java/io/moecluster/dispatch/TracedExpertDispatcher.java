package io.moecluster.dispatch;

import io.moecluster.core.moe.ExpertDispatcher;
import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.TraceHeader;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The MoE dispatch span: one CLIENT span {@code moe.dispatch} per layer the {@link io.moecluster.core.moe.MoeBlock}
 * sends to expert services, from its first batch to the last answer, with the layer, the expert
 * ids, the token rows per expert and in all, and the bytes sent. Its context goes into every
 * TokenBatch of the layer, so the experts' batch spans are its children.
 *
 * <p>The parent is the current context: the attention step in embedded-router mode (which says
 * whether this step has per-layer spans), the remote context from the attention's TokenBatch in
 * the router-service. Without a sampled parent, or when the step has no per-layer spans, no span
 * is made and the batches carry no trace context.
 */
public final class TracedExpertDispatcher implements ExpertDispatcher {
    private final ExpertDispatcher delegate;
    private final ServiceTracing tracing;
    private final TraceHeader header;
    private final long bytesPerRow;
    private final long[] experts;
    private final long[] counts;
    private int dispatched;
    private boolean decided;
    private Span span;
    private long rows;
    private long bytes;

    private TracedExpertDispatcher(ExpertDispatcher delegate, ServiceTracing tracing, TraceHeader header, int hidden,
                                   int slots) {
        this.delegate = delegate;
        this.tracing = tracing;
        this.header = header;
        this.bytesPerRow = 4L * hidden + 4; // f32 row and its routing weight
        this.experts = new long[slots];
        this.counts = new long[slots];
    }

    /**
     * {@code dispatcher} itself when tracing is off (nothing on the data path), else a dispatcher
     * that traces each layer and has {@code dispatcher} send the layer's trace context.
     *
     * @param slots the most batches one layer dispatches (experts plus the shared expert)
     */
    public static ExpertDispatcher wrap(AeronExpertDispatcher dispatcher, ServiceTracing tracing, int hidden,
                                        int slots) {
        if (!tracing.enabled()) {
            return dispatcher;
        }
        TraceHeader header = new TraceHeader();
        dispatcher.traceHeader(header);
        return new TracedExpertDispatcher(dispatcher, tracing, header, hidden, slots);
    }

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                         MemorySegment out) {
        if (!decided) {
            decided = true;
            begin(layer);
        }
        if (span != null && dispatched < experts.length) {
            experts[dispatched] = expert;
            counts[dispatched] = count;
            dispatched++;
            this.rows += count;
            bytes += count * bytesPerRow;
        }
        try {
            delegate.dispatch(layer, expert, rows, row, count, weights, out);
        } catch (RuntimeException | Error e) {
            end(e);
            throw e;
        }
    }

    private void begin(int layer) {
        Context parent = Context.current();
        SpanContext p = Span.fromContext(parent).getSpanContext();
        Boolean layerSpans = parent.get(ServiceTracing.LAYER_SPANS);
        if (!p.isValid() || !p.isSampled() || Boolean.FALSE.equals(layerSpans)) {
            header.clear();
            return;
        }
        span = tracing.tracer().spanBuilder("moe.dispatch")
                .setParent(parent)
                .setSpanKind(SpanKind.CLIENT)
                .setAttribute(ServiceTracing.LAYER, (long) layer)
                .startSpan();
        SpanContext c = span.getSpanContext();
        header.set(BinaryTraceContext.traceIdHigh(c), BinaryTraceContext.traceIdLow(c), BinaryTraceContext.spanId(c),
                BinaryTraceContext.flags(c));
    }

    @Override
    public void awaitAll() {
        try {
            delegate.awaitAll();
        } catch (RuntimeException | Error e) {
            end(e);
            throw e;
        }
        end(null);
    }

    private void end(Throwable failure) {
        Span s = span;
        span = null;
        decided = false;
        header.clear();
        if (s != null) {
            List<Long> ids = new ArrayList<>(dispatched);
            List<Long> perExpert = new ArrayList<>(dispatched);
            for (int i = 0; i < dispatched; i++) {
                ids.add(experts[i]);
                perExpert.add(counts[i]);
            }
            s.setAttribute(ServiceTracing.EXPERT_IDS, ids);
            s.setAttribute(ServiceTracing.EXPERT_TOKEN_COUNTS, perExpert);
            s.setAttribute(ServiceTracing.TOKEN_COUNT, rows);
            s.setAttribute(ServiceTracing.BYTES, bytes);
            if (failure != null) {
                s.recordException(failure);
                s.setStatus(StatusCode.ERROR, String.valueOf(failure.getMessage()));
            }
            s.end();
        }
        dispatched = 0;
        rows = 0;
        bytes = 0;
    }

    @Override
    public void close() {
        delegate.close();
    }
}
