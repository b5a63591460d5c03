package io.moecluster.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.util.Collection;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * How the services of a process trace: off, configured by the standard OpenTelemetry variables
 * ({@code OTEL_*} environment variables or {@code otel.*} system properties, through the SDK's
 * autoconfiguration with the OTLP exporter), or into a given exporter (tests, benchmarks). Each
 * service {@link #start starts} its own {@link ServiceTracing} from it, with its resource
 * ({@code service.name}, {@code service.instance.id}).
 *
 * <p>Tracing is off unless an operator asks for it: {@code OTEL_TRACES_EXPORTER} set to anything
 * but {@code none}, or {@code OTEL_EXPORTER_OTLP_ENDPOINT} / {@code OTEL_EXPORTER_OTLP_TRACES_ENDPOINT}
 * set; {@code OTEL_SDK_DISABLED=true} turns it off regardless. {@code MOE_TRACE_LAYERS}
 * ({@code all}, {@code none}, {@code every:N}) sets the per-layer span sampling.
 */
public final class TracingOptions {
    /** The environment variable with the per-layer span sampling. */
    public static final String LAYERS_ENV = "MOE_TRACE_LAYERS";

    private enum Kind { OFF, AUTOCONFIGURE, EXPORTER }

    private final Kind kind;
    private final Map<String, String> properties;
    private final SpanExporter exporter;
    private final boolean batch;
    private final LayerSampling layers;

    private TracingOptions(Kind kind, Map<String, String> properties, SpanExporter exporter, boolean batch,
                           LayerSampling layers) {
        this.kind = kind;
        this.properties = properties;
        this.exporter = exporter;
        this.batch = batch;
        this.layers = layers;
    }

    public static TracingOptions off() {
        return new TracingOptions(Kind.OFF, Map.of(), null, false, LayerSampling.DEFAULT);
    }

    /** From this process's environment and system properties (see the class comment). */
    public static TracingOptions fromEnvironment() {
        return fromProperties(Map.of(), System.getenv(), LayerSampling.parse(System.getenv(LAYERS_ENV)));
    }

    /**
     * As {@link #fromEnvironment()}, with {@code properties} ({@code otel.*} names) under the
     * environment and system properties, which win. Tests configure the real exporter this way.
     */
    public static TracingOptions fromProperties(Map<String, String> properties, LayerSampling layers) {
        return fromProperties(properties, System.getenv(), layers);
    }

    static TracingOptions fromProperties(Map<String, String> properties, Map<String, String> env, LayerSampling layers) {
        Function<String, String> config = name -> {
            String v = System.getProperty(name);
            if (v == null) {
                v = env.get(name.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_'));
            }
            if (v == null) {
                v = properties.get(name);
            }
            return v == null || v.isBlank() ? null : v.trim();
        };
        if (!enabledBy(config)) {
            return new TracingOptions(Kind.OFF, Map.of(), null, false, layers);
        }
        return new TracingOptions(Kind.AUTOCONFIGURE, Map.copyOf(properties), null, false, layers);
    }

    /** Whether the OTel configuration asks for traces (see the class comment). */
    static boolean enabledBy(Function<String, String> config) {
        if ("true".equalsIgnoreCase(config.apply("otel.sdk.disabled"))) {
            return false;
        }
        String exporter = config.apply("otel.traces.exporter");
        if (exporter != null) {
            return !exporter.equalsIgnoreCase("none");
        }
        return config.apply("otel.exporter.otlp.endpoint") != null
                || config.apply("otel.exporter.otlp.traces.endpoint") != null;
    }

    /** Every span, synchronously, into {@code exporter} (tests); the exporter is never shut down by a service. */
    public static TracingOptions exportingTo(SpanExporter exporter, LayerSampling layers) {
        return new TracingOptions(Kind.EXPORTER, Map.of(), exporter, false, layers);
    }

    /** Every span, through a batch processor as in production, into {@code exporter} (benchmarks). */
    public static TracingOptions batchingTo(SpanExporter exporter, LayerSampling layers) {
        return new TracingOptions(Kind.EXPORTER, Map.of(), exporter, true, layers);
    }

    /** The same tracing with another per-layer sampling. */
    public TracingOptions withLayers(LayerSampling layers) {
        return new TracingOptions(kind, properties, exporter, batch, layers);
    }

    public boolean enabled() {
        return kind != Kind.OFF;
    }

    public LayerSampling layers() {
        return layers;
    }

    /** The tracing of one service instance; {@link ServiceTracing#close()} flushes and stops it. */
    public ServiceTracing start(String service, String instance) {
        Resource own = Resource.create(Attributes.of(ServiceMetrics.SERVICE_NAME, service,
                ServiceMetrics.INSTANCE_ID, instance));
        return switch (kind) {
            case OFF -> ServiceTracing.off(layers);
            case EXPORTER -> {
                SpanExporter shared = new Unclosed(exporter);
                SdkTracerProvider provider = SdkTracerProvider.builder()
                        .setResource(Resource.getDefault().merge(own))
                        .addSpanProcessor(batch ? BatchSpanProcessor.builder(shared).build()
                                : SimpleSpanProcessor.create(shared))
                        .build();
                OpenTelemetrySdk sdk = OpenTelemetrySdk.builder()
                        .setTracerProvider(provider).build();
                yield new ServiceTracing(sdk, sdk.getTracer(ServiceTracing.SCOPE), layers, sdk::close);
            }
            case AUTOCONFIGURE -> {
                Map<String, String> defaults = new HashMap<>();
                // Only traces are ours to export this way; metrics stay on the Prometheus endpoint.
                defaults.put("otel.metrics.exporter", "none");
                defaults.put("otel.logs.exporter", "none");
                defaults.putAll(properties);
                OpenTelemetry sdk = AutoConfiguredOpenTelemetrySdk.builder()
                        .addPropertiesSupplier(() -> defaults)
                        // The service's own name and id win over OTEL_SERVICE_NAME: one variable set
                        // for a whole cluster must not make its services indistinguishable.
                        .addResourceCustomizer((resource, config) -> resource.merge(own))
                        .disableShutdownHook()
                        .build()
                        .getOpenTelemetrySdk();
                OpenTelemetrySdk closable = (OpenTelemetrySdk) sdk;
                yield new ServiceTracing(closable, sdk.getTracer(ServiceTracing.SCOPE), layers, closable::close);
            }
        };
    }

    @Override
    public String toString() {
        return switch (kind) {
            case OFF -> "tracing off";
            case AUTOCONFIGURE -> "tracing via OTEL_* configuration, layer spans " + layers;
            case EXPORTER -> "tracing into " + exporter + ", layer spans " + layers;
        };
    }

    /** Shares one exporter among services: a service stopping flushes it but does not shut it down. */
    private record Unclosed(SpanExporter delegate) implements SpanExporter {
        @Override
        public CompletableResultCode export(Collection<SpanData> spans) {
            return delegate.export(spans);
        }

        @Override
        public CompletableResultCode flush() {
            return delegate.flush();
        }

        @Override
        public CompletableResultCode shutdown() {
            return delegate.flush();
        }
    }
}
