package io.moecluster.telemetry;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.util.Collections;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * The server span of one HTTP request (the OpenAI-compatible API): named {@code METHOD route},
 * kind SERVER, its parent the client's W3C {@code traceparent} header when sent, with the
 * {@code http.*} attributes; ended once, with the response status. With tracing off it is
 * {@link #NONE}: nothing is built.
 */
public final class HttpServerSpan {
    static final AttributeKey<String> METHOD = AttributeKey.stringKey("http.request.method");
    static final AttributeKey<String> ROUTE = AttributeKey.stringKey("http.route");
    static final AttributeKey<String> PATH = AttributeKey.stringKey("url.path");
    static final AttributeKey<Long> STATUS = AttributeKey.longKey("http.response.status_code");

    /** Tracing off: no span, the root context. */
    public static final HttpServerSpan NONE = new HttpServerSpan(null, Context.root());

    private final Span span;
    private final Context context;
    private final AtomicBoolean ended = new AtomicBoolean();

    private HttpServerSpan(Span span, Context context) {
        this.span = span;
        this.context = context;
    }

    /**
     * Starts the span of a request.
     *
     * @param header the request's header of a (lower-case) name, or null
     */
    public static HttpServerSpan start(ServiceTracing tracing, String method, String route, String path,
                                       Function<String, String> header) {
        if (!tracing.enabled()) {
            return NONE;
        }
        Context parent = tracing.propagator().extract(Context.root(), header, new TextMapGetter<>() {
            @Override
            public Iterable<String> keys(Function<String, String> carrier) {
                return Collections.emptyList();
            }

            @Override
            public String get(Function<String, String> carrier, String key) {
                return carrier == null ? null : carrier.apply(key);
            }
        });
        Span span = tracing.tracer().spanBuilder(method + " " + route)
                .setParent(parent)
                .setSpanKind(SpanKind.SERVER)
                .setAttribute(METHOD, method)
                .setAttribute(ROUTE, route)
                .setAttribute(PATH, path)
                .startSpan();
        return new HttpServerSpan(span, parent.with(span));
    }

    /** The context to make current around work done for the request (its attention call's parent). */
    public Context context() {
        return context;
    }

    /**
     * Ends the span with the response status (a 5xx marks it failed, as the HTTP conventions have
     * it); {@code error}, when not null, says why. Only the first call counts.
     */
    public void end(int status, String error) {
        if (span == null || !ended.compareAndSet(false, true)) {
            return;
        }
        span.setAttribute(STATUS, (long) status);
        if (status >= 500) {
            span.setStatus(StatusCode.ERROR, error == null ? "HTTP " + status : error);
        }
        span.end();
    }
}
