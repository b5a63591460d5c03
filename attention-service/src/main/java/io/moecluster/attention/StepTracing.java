package io.moecluster.attention;

import io.moecluster.telemetry.ServiceTracing;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;

/**
 * The span of each scheduling step of a {@link GenerationLoop}: {@code attention.step}, whose
 * parent is the trace context of the oldest request in the step and which links to the other
 * requests' contexts (a step serves several requests; a span has one parent). It is current
 * while the step runs, with {@link ServiceTracing#LAYER_SPANS} telling the MoE side whether this
 * step gets per-layer spans ({@link io.moecluster.telemetry.LayerSampling}).
 *
 * <p>Only built when tracing is on; loop thread only.
 */
final class StepTracing {
    private static final Comparator<GenerationHandle> OLDEST_FIRST =
            Comparator.comparingLong(h -> h.sequence.id());

    private final ServiceTracing tracing;
    private final int maxRunning;
    private final List<GenerationHandle> inStep = new ArrayList<>();
    private long steps;
    private Span span;
    private Scope scope;

    StepTracing(ServiceTracing tracing, int maxRunning) {
        this.tracing = tracing;
        this.maxRunning = maxRunning;
    }

    /**
     * Starts the step's span and makes it current. The step's sequences are the oldest
     * {@code maxRunning} of those the generator holds: it admits in submission order, so every
     * running sequence is older than every waiting one.
     */
    void step(Collection<GenerationHandle> active) {
        inStep.clear();
        for (GenerationHandle h : active) {
            if (h.sequence != null) {
                inStep.add(h);
            }
        }
        inStep.sort(OLDEST_FIRST);
        int n = Math.min(maxRunning, inStep.size());
        long step = steps++;
        boolean layerSpans = tracing.layers().sampled(step);
        Context parent = n > 0 && inStep.get(0).traceContext != null ? inStep.get(0).traceContext : Context.root();
        SpanBuilder b = tracing.tracer().spanBuilder("attention.step")
                .setParent(parent)
                .setAttribute(ServiceTracing.STEP, step)
                .setAttribute(ServiceTracing.SEQUENCES, (long) n)
                .setAttribute(ServiceTracing.LAYER_SPANS_ATTRIBUTE, layerSpans);
        for (int i = 1; i < n; i++) {
            Context c = inStep.get(i).traceContext;
            if (c != null) {
                SpanContext link = Span.fromContext(c).getSpanContext();
                if (link.isValid()) {
                    b.addLink(link);
                }
            }
        }
        inStep.clear();
        span = b.startSpan();
        scope = Context.root().with(span).with(ServiceTracing.LAYER_SPANS, layerSpans).makeCurrent();
    }

    void succeeded(int tokens) {
        span.setAttribute(ServiceTracing.TOKEN_COUNT, (long) tokens);
        end();
    }

    void failed(Throwable e) {
        span.recordException(e);
        span.setStatus(StatusCode.ERROR, String.valueOf(e.getMessage()));
        end();
    }

    private void end() {
        scope.close();
        span.end();
        scope = null;
        span = null;
    }
}
