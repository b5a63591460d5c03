package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.telemetry.LayerSampling;
import io.moecluster.telemetry.TracingOptions;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The production path: tracing configured only by OTEL_* style properties (OTLP exporter over
 * HTTP/protobuf, batch span processor), spans received by an OTLP receiver on loopback. One
 * Generate call arrives as one trace with spans from every service, expert batches under the
 * router's dispatch spans.
 */
class ClusterOtlpExportTest {
    private final ClusterTracingTest cluster = new ClusterTracingTest();
    private OtlpReceiver receiver;

    @AfterEach
    void stop() throws Exception {
        cluster.stop();
        if (receiver != null) {
            receiver.close();
        }
    }

    @Test
    void otelPropertiesSendOneTraceOverOtlpToTheConfiguredEndpoint() throws Exception {
        receiver = new OtlpReceiver();
        TracingOptions tracing = TracingOptions.fromProperties(Map.of(
                "otel.traces.exporter", "otlp",
                "otel.exporter.otlp.protocol", "http/protobuf",
                "otel.exporter.otlp.endpoint", receiver.endpoint(),
                "otel.bsp.schedule.delay", "100",
                "otel.traces.sampler", "parentbased_always_on"), LayerSampling.ALL);
        assertThat(tracing.enabled()).isTrue();
        ClusterTracingTest.Cluster c = cluster.start(false, tracing);
        c.inference().generate(ClusterEndToEndTest.request(ClusterEndToEndTest.prompt(6, 4)));

        long deadline = System.nanoTime() + 30_000_000_000L;
        List<OtlpReceiver.ReceivedSpan> spans = receiver.spans();
        while (System.nanoTime() < deadline && !(has(spans, "moe.v1.Inference/Generate")
                && spans.stream().filter(s -> s.name().endsWith("/Run")).count() == 2
                && has(spans, "moe.expert.batch"))) {
            Thread.sleep(100);
            spans = receiver.spans();
        }
        assertThat(receiver.requests()).isPositive();
        assertThat(spans.stream().map(OtlpReceiver.ReceivedSpan::traceId).distinct().toList()).hasSize(1);
        assertThat(spans.stream().map(OtlpReceiver.ReceivedSpan::service).collect(Collectors.toSet()))
                .isEqualTo(Set.of("moe-router", "moe-attention", "moe-expert"));
        Map<String, OtlpReceiver.ReceivedSpan> byId = spans.stream()
                .collect(Collectors.toMap(OtlpReceiver.ReceivedSpan::spanId, Function.identity()));
        List<OtlpReceiver.ReceivedSpan> batches = spans.stream().filter(s -> s.name().equals("moe.expert.batch")).toList();
        assertThat(batches.stream().map(OtlpReceiver.ReceivedSpan::instance).distinct().toList())
                .containsExactlyInAnyOrder("expert-0", "expert-1");
        assertThat(batches).allSatisfy(b -> {
            OtlpReceiver.ReceivedSpan parent = byId.get(b.parentSpanId());
            assertThat(parent).isNotNull();
            assertThat(parent.name()).isEqualTo("moe.dispatch");
            assertThat(parent.service()).isEqualTo("moe-router");
        });
    }

    private static boolean has(List<OtlpReceiver.ReceivedSpan> spans, String name) {
        return spans.stream().anyMatch(s -> s.name().equals(name));
    }
}
