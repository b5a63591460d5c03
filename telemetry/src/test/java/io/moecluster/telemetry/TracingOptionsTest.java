package io.moecluster.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.util.Map;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class TracingOptionsTest {
    @Test
    void tracingIsOffUnlessAnExporterOrAnOtlpEndpointIsConfigured() {
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of(), LayerSampling.DEFAULT).enabled()).isFalse();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_TRACES_EXPORTER", "none"), LayerSampling.DEFAULT)
                .enabled()).isFalse();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_SERVICE_NAME", "x"), LayerSampling.DEFAULT)
                .enabled()).isFalse();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_TRACES_EXPORTER", "otlp"), LayerSampling.DEFAULT)
                .enabled()).isTrue();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                LayerSampling.DEFAULT).enabled()).isTrue();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces"),
                LayerSampling.DEFAULT).enabled()).isTrue();
        assertThat(TracingOptions.fromProperties(Map.of("otel.traces.exporter", "otlp"), Map.of(), LayerSampling.DEFAULT)
                .enabled()).isTrue();
        assertThat(TracingOptions.fromProperties(Map.of(), Map.of("OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "true"),
                LayerSampling.DEFAULT).enabled()).isFalse();
        assertThat(TracingOptions.off().start("moe-router", "r").enabled()).isFalse();
    }

    @Test
    void layerSamplingParsesAllNoneAndEveryN() {
        assertThat(LayerSampling.parse("all")).isEqualTo(LayerSampling.ALL);
        assertThat(LayerSampling.parse("NONE")).isEqualTo(LayerSampling.NONE);
        assertThat(LayerSampling.parse(null)).isEqualTo(LayerSampling.DEFAULT);
        LayerSampling every4 = LayerSampling.parse("every:4");
        assertThat(every4.toString()).isEqualTo("every:4");
        assertThat(LongStream.range(0, 12).filter(every4::sampled).toArray()).containsExactly(0, 4, 8);
        assertThat(LayerSampling.ALL.sampled(7)).isTrue();
        assertThat(LayerSampling.NONE.sampled(0)).isFalse();
        assertThatThrownBy(() -> LayerSampling.parse("every:0")).hasMessageContaining("every:0");
        assertThatThrownBy(() -> LayerSampling.parse("some")).hasMessageContaining("all, none or every:N");
    }

    @Test
    void binaryContextRoundTripsTheW3cIdsAndFlags() {
        InMemorySpanExporter exporter = InMemorySpanExporter.create();
        try (ServiceTracing tracing = TracingOptions.exportingTo(exporter, LayerSampling.ALL).start("moe-expert", "expert-3")) {
            Span span = tracing.tracer().spanBuilder("x").startSpan();
            SpanContext c = span.getSpanContext();
            SpanContext back = BinaryTraceContext.remote(BinaryTraceContext.traceIdHigh(c), BinaryTraceContext.traceIdLow(c),
                    BinaryTraceContext.spanId(c), BinaryTraceContext.flags(c));
            assertThat(back.getTraceId()).isEqualTo(c.getTraceId());
            assertThat(back.getSpanId()).isEqualTo(c.getSpanId());
            assertThat(back.isSampled()).isTrue();
            assertThat(back.isRemote()).isTrue();
            span.end();
        }
        SpanData s = exporter.getFinishedSpanItems().getFirst();
        assertThat(s.getResource().getAttribute(ServiceMetrics.SERVICE_NAME)).isEqualTo("moe-expert");
        assertThat(s.getResource().getAttribute(ServiceMetrics.INSTANCE_ID)).isEqualTo("expert-3");
        assertThat(BinaryTraceContext.remote(0, 0, 0, 0).isValid()).isFalse();
    }
}
