package io.moecluster.attention;

import io.moecluster.telemetry.BinaryTraceContext;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.TokenBatchWriter;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.context.Context;

/** The {@code moe.layer} span of a MoE layer sent to the router-service, and the trace context its TokenBatch carries. */
final class LayerSpans {
    private LayerSpans() {
    }

    /**
     * Sets the trace context of {@code writer}'s next TokenBatch and returns the layer span, or null
     * when there is none: without a current step span nothing is traced; when the step has no
     * per-layer spans the step's context goes with the sampled flag cleared, so the router and the
     * experts make no spans for this layer.
     */
    static Span begin(ServiceTracing tracing, TokenBatchWriter writer, int layer, int tokens, int hidden) {
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
}
