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
 *
 * <p>With two dispatch groups (the ping-pong's micro-batches) each group's layer has its own span;
 * a batch sent again by a failover while the other group dispatches carries that group's context.
 */
public final class TracedExpertDispatcher implements ExpertDispatcher {
    private final ExpertDispatcher delegate;
    private final ServiceTracing tracing;
    private final TraceHeader header;
    private final long bytesPerRow;
    /** Per dispatch group: its layer's span, from the first batch to the last answer. */
    private final LayerSpan[] groups;

    /** The span of one group's layer in flight and what it records. */
    private static final class LayerSpan {
        final long[] experts;
        final long[] counts;
        int dispatched;
        boolean decided;
        Span span;
        long rows;
        long bytes;

        LayerSpan(int slots) {
            experts = new long[slots];
            counts = new long[slots];
        }
    }

    private TracedExpertDispatcher(ExpertDispatcher delegate, ServiceTracing tracing, TraceHeader header, int hidden,
                                   int slots) {
        this.delegate = delegate;
        this.tracing = tracing;
        this.header = header;
        this.bytesPerRow = 4L * hidden + 4; // f32 row and its routing weight
        this.groups = new LayerSpan[delegate.groups()];
        for (int g = 0; g < groups.length; g++) {
            groups[g] = new LayerSpan(slots);
        }
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
    public int groups() {
        return groups.length;
    }

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                         MemorySegment out) {
        dispatch(0, layer, expert, rows, row, count, weights, out);
    }

    @Override
    public void dispatch(int group, int layer, int expert, MemorySegment rows, int row, int count,
                         MemorySegment weights, MemorySegment out) {
        LayerSpan g = groups[group];
        if (!g.decided) {
            g.decided = true;
            begin(g, layer);
        } else {
            applyHeader(g); // the other group's layer may have set the header since
        }
        if (g.span != null && g.dispatched < g.experts.length) {
            g.experts[g.dispatched] = expert;
            g.counts[g.dispatched] = count;
            g.dispatched++;
            g.rows += count;
            g.bytes += count * bytesPerRow;
        }
        try {
            delegate.dispatch(group, layer, expert, rows, row, count, weights, out);
        } catch (RuntimeException | Error e) {
            end(group, e);
            throw e;
        }
    }

    private void begin(LayerSpan g, int layer) {
        Context parent = Context.current();
        SpanContext p = Span.fromContext(parent).getSpanContext();
        Boolean layerSpans = parent.get(ServiceTracing.LAYER_SPANS);
        if (!p.isValid() || !p.isSampled() || Boolean.FALSE.equals(layerSpans)) {
            header.clear();
            return;
        }
        g.span = tracing.tracer().spanBuilder("moe.dispatch")
                .setParent(parent)
                .setSpanKind(SpanKind.CLIENT)
                .setAttribute(ServiceTracing.LAYER, (long) layer)
                .startSpan();
        applyHeader(g);
    }

    /** The batches sent from now on carry {@code g}'s span, or no trace context if it has none. */
    private void applyHeader(LayerSpan g) {
        if (g.span == null) {
            header.clear();
            return;
        }
        SpanContext c = g.span.getSpanContext();
        header.set(BinaryTraceContext.traceIdHigh(c), BinaryTraceContext.traceIdLow(c), BinaryTraceContext.spanId(c),
                BinaryTraceContext.flags(c));
    }

    @Override
    public void awaitAll() {
        awaitAll(0);
    }

    @Override
    public void awaitAll(int group) {
        try {
            delegate.awaitAll(group);
        } catch (RuntimeException | Error e) {
            end(group, e);
            throw e;
        }
        end(group, null);
    }

    @Override
    public void discard(int group) {
        delegate.discard(group);
        end(group, null);
    }

    private void end(int group, Throwable failure) {
        LayerSpan g = groups[group];
        Span s = g.span;
        g.span = null;
        g.decided = false;
        header.clear();
        if (s != null) {
            List<Long> ids = new ArrayList<>(g.dispatched);
            List<Long> perExpert = new ArrayList<>(g.dispatched);
            for (int i = 0; i < g.dispatched; i++) {
                ids.add(g.experts[i]);
                perExpert.add(g.counts[i]);
            }
            s.setAttribute(ServiceTracing.EXPERT_IDS, ids);
            s.setAttribute(ServiceTracing.EXPERT_TOKEN_COUNTS, perExpert);
            s.setAttribute(ServiceTracing.TOKEN_COUNT, g.rows);
            s.setAttribute(ServiceTracing.BYTES, g.bytes);
            if (failure != null) {
                s.recordException(failure);
                s.setStatus(StatusCode.ERROR, String.valueOf(failure.getMessage()));
            }
            s.end();
        }
        g.dispatched = 0;
        g.rows = 0;
        g.bytes = 0;
    }

    @Override
    public void close() {
        delegate.close();
    }
}
