package io.moecluster.telemetry;

import io.grpc.ClientInterceptor;
import io.grpc.ServerInterceptor;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.ContextKey;
import io.opentelemetry.context.propagation.TextMapPropagator;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One service's tracing: a tracer (with the service's resource), the W3C propagator used on gRPC
 * metadata, gRPC interceptors, and the per-layer span sampling. Built by {@link TracingOptions#start}.
 *
 * <p>{@link #enabled()} is final and checked before anything is built on the data path: with
 * tracing off the services allocate nothing for it.
 */
public final class ServiceTracing implements AutoCloseable {
    private final AtomicBoolean closed = new AtomicBoolean();
    /** The instrumentation scope of every span of the cluster. */
    public static final String SCOPE = "io.moecluster";

    /**
     * On the attention service's step context: whether this step has per-layer spans. Absent on a
     * context made from a data-plane header, where the header's sampled flag says it.
     */
    public static final ContextKey<Boolean> LAYER_SPANS = ContextKey.named("moe.layer-spans");

    public static final AttributeKey<Long> LAYER = AttributeKey.longKey("moe.layer");
    public static final AttributeKey<Long> EXPERT_ID = AttributeKey.longKey("moe.expert_id");
    public static final AttributeKey<List<Long>> EXPERT_IDS = AttributeKey.longArrayKey("moe.expert_ids");
    public static final AttributeKey<List<Long>> EXPERT_TOKEN_COUNTS =
            AttributeKey.longArrayKey("moe.expert_token_counts");
    public static final AttributeKey<Long> TOKEN_COUNT = AttributeKey.longKey("moe.token_count");
    public static final AttributeKey<Long> BYTES = AttributeKey.longKey("moe.bytes");
    public static final AttributeKey<Long> BATCH_ID = AttributeKey.longKey("moe.batch_id");
    public static final AttributeKey<Long> STEP = AttributeKey.longKey("moe.step");
    public static final AttributeKey<Long> SEQUENCES = AttributeKey.longKey("moe.sequences");
    public static final AttributeKey<Boolean> LAYER_SPANS_ATTRIBUTE = AttributeKey.booleanKey("moe.layer_spans");

    private final boolean enabled;
    private final OpenTelemetry otel;
    private final Tracer tracer;
    private final LayerSampling layers;
    private final AutoCloseable closer;
    private final ServerInterceptor serverInterceptor;
    private final ClientInterceptor clientInterceptor;

    ServiceTracing(OpenTelemetry otel, Tracer tracer, LayerSampling layers, AutoCloseable closer) {
        this.enabled = otel != null;
        this.otel = otel == null ? OpenTelemetry.noop() : otel;
        this.tracer = tracer == null ? this.otel.getTracer(SCOPE) : tracer;
        this.layers = layers;
        this.closer = closer;
        this.serverInterceptor = new GrpcTracing.Server(this);
        this.clientInterceptor = new GrpcTracing.Client(this);
    }

    /** Tracing off: a no-op tracer, interceptors that pass calls through untouched. */
    public static ServiceTracing off() {
        return off(LayerSampling.DEFAULT);
    }

    static ServiceTracing off(LayerSampling layers) {
        return new ServiceTracing(null, null, layers, null);
    }

    public boolean enabled() {
        return enabled;
    }

    public Tracer tracer() {
        return tracer;
    }

    public LayerSampling layers() {
        return layers;
    }

    /** W3C trace context (traceparent / tracestate), as every service propagates it on gRPC. */
    public TextMapPropagator propagator() {
        return W3CTraceContextPropagator.getInstance();
    }

    /** A server span per call, its parent taken from the caller's metadata; current while the handler runs. */
    public ServerInterceptor serverInterceptor() {
        return serverInterceptor;
    }

    /** A client span per call made under a current span, its context injected into the metadata. */
    public ClientInterceptor clientInterceptor() {
        return clientInterceptor;
    }

    /** Flushes what is left and stops the exporter; idempotent (a node and its server may both close it). */
    @Override
    public void close() {
        if (closer != null && closed.compareAndSet(false, true)) {
            try {
                closer.close();
            } catch (Exception e) {
                System.getLogger(ServiceTracing.class.getName()).log(System.Logger.Level.WARNING, "closing tracing: " + e);
            }
        }
    }
}
