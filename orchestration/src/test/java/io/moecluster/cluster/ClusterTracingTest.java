package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionNode;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.router.RouterNode;
import io.moecluster.telemetry.LayerSampling;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One client request is one trace across every hop: the router's gRPC server span, the attention
 * service's Run span and scheduling steps, the MoE dispatch spans and the expert services' batch
 * spans, parented across gRPC metadata and the SBE header, in both router modes. The cluster runs
 * in one JVM over a real Aeron media driver and gRPC on loopback; spans go to an in-memory exporter.
 */
class ClusterTracingTest {
    private final List<AutoCloseable> open = new ArrayList<>();
    private final InMemorySpanExporter exporter = InMemorySpanExporter.create();

    @AfterEach
    void stop() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
    }

    record Cluster(ModelConfig config, InferenceGrpc.InferenceBlockingStub inference) {
    }

    Cluster start(boolean embedded, TracingOptions tracing) throws Exception {
        Path dir = GoldenModels.dir(GoldenModels.MIXTRAL);
        ModelConfig config = ModelConfig.load(dir);
        EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        ClusterSpec spec = new ClusterEndToEndTest().spec(driver, config, embedded, false);
        for (ClusterSpec.Expert e : spec.experts()) {
            open.add(ExpertNode.launch(ClusterEndToEndTest.expert(spec, e.id(), dir).tracing(tracing)));
        }
        open.add(AttentionNode.launch(ClusterEndToEndTest.attention(spec, dir).tracing(tracing)));
        RouterNode router = RouterNode.launch(ClusterEndToEndTest.router(spec, dir).tracing(tracing));
        open.add(router);
        ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
        open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        return new Cluster(config, InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS));
    }

    /** The spans once every call's span has ended (the router answers before the attention call closes). */
    /**
     * The spans once the request's are all ended. The last step span may end just after the client
     * has its answer (the step that produced the last token ends after handing it over), so the
     * request spans being in is not enough: wait until no span has been added for 200 ms too.
     */
    List<SpanData> spansWhenComplete() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        int seen = -1;
        long stableSince = System.nanoTime();
        while (true) {
            List<SpanData> spans = exporter.getFinishedSpanItems();
            boolean complete = spans.stream().filter(s -> s.getName().endsWith("/Generate")).count() == 1
                    && spans.stream().filter(s -> s.getName().endsWith("/Run")).count() == 2; // client + server
            if (spans.size() != seen) {
                seen = spans.size();
                stableSince = System.nanoTime();
            }
            boolean settled = System.nanoTime() - stableSince > TimeUnit.MILLISECONDS.toNanos(200);
            if ((complete && settled) || System.nanoTime() > deadline) {
                return spans;
            }
            Thread.sleep(20);
        }
    }

    static String service(SpanData s) {
        return s.getResource().getAttribute(ServiceMetrics.SERVICE_NAME);
    }

    static String instance(SpanData s) {
        return s.getResource().getAttribute(ServiceMetrics.INSTANCE_ID);
    }

    static List<SpanData> named(List<SpanData> spans, String name) {
        return spans.stream().filter(s -> s.getName().equals(name)).toList();
    }

    /** Whether some ancestor of {@code span} (following parent ids in {@code byId}) satisfies {@code test}. */
    static boolean hasAncestor(SpanData span, Map<String, SpanData> byId, Predicate<SpanData> test) {
        SpanData at = byId.get(span.getParentSpanId());
        while (at != null) {
            if (test.test(at)) {
                return true;
            }
            at = byId.get(at.getParentSpanId());
        }
        return false;
    }

    @ParameterizedTest(name = "embedded router: {0}")
    @ValueSource(booleans = {false, true})
    void oneGenerateCallIsOneTraceThroughRouterAttentionAndExperts(boolean embedded) throws Exception {
        Cluster c = start(embedded, TracingOptions.exportingTo(exporter, LayerSampling.ALL));
        int[] prompt = ClusterEndToEndTest.prompt(7, 1);
        assertThat(c.inference().generate(ClusterEndToEndTest.request(prompt)).getTokenIdsCount())
                .isEqualTo(ClusterEndToEndTest.NEW_TOKENS);
        List<SpanData> spans = spansWhenComplete();

        assertThat(spans.stream().map(SpanData::getTraceId).distinct().toList()).as("trace ids").hasSize(1);
        assertThat(spans.stream().map(ClusterTracingTest::service).distinct().toList())
                .containsExactlyInAnyOrder("moe-router", "moe-attention", "moe-expert");
        Map<String, SpanData> byId = spans.stream().collect(Collectors.toMap(SpanData::getSpanId, Function.identity()));

        SpanData request = named(spans, "moe.v1.Inference/Generate").getFirst();
        assertThat(request.getKind()).isEqualTo(SpanKind.SERVER);
        assertThat(service(request)).isEqualTo("moe-router");
        assertThat(instance(request)).isEqualTo("router-0");
        assertThat(request.getParentSpanContext().isValid()).as("the request span is the root").isFalse();

        SpanData run = named(spans, "moe.v1.internal.AttentionWorker/Run").stream()
                .filter(s -> s.getKind() == SpanKind.SERVER).findFirst().orElseThrow();
        assertThat(service(run)).isEqualTo("moe-attention");
        assertThat(instance(run)).isEqualTo("attention-0");
        assertThat(hasAncestor(run, byId, s -> s == request)).isTrue();

        List<SpanData> steps = named(spans, "attention.step");
        assertThat(steps).isNotEmpty().allSatisfy(step -> {
            assertThat(step.getParentSpanId()).isEqualTo(run.getSpanId());
            assertThat(hasAncestor(step, byId, s -> s == request)).isTrue();
            assertThat(step.getAttributes().get(ServiceTracing.LAYER_SPANS_ATTRIBUTE)).isTrue();
        });
        // One prefill step (the prompt fits one step) and one step per further token.
        assertThat(steps).hasSize(ClusterEndToEndTest.NEW_TOKENS);

        int moeLayers = c.config().numLayers();
        List<SpanData> dispatches = named(spans, "moe.dispatch");
        assertThat(dispatches).hasSize(steps.size() * moeLayers);
        long bytesPerRow = 4L * c.config().hiddenSize() + 4;
        for (SpanData d : dispatches) {
            assertThat(d.getKind()).isEqualTo(SpanKind.CLIENT);
            assertThat(service(d)).isEqualTo(embedded ? "moe-attention" : "moe-router");
            assertThat(hasAncestor(d, byId, s -> s.getName().equals("attention.step"))).as("dispatch under a step").isTrue();
            SpanData parent = byId.get(d.getParentSpanId());
            if (embedded) {
                assertThat(parent.getName()).isEqualTo("attention.step");
            } else {
                assertThat(parent.getName()).isEqualTo("moe.layer");
                assertThat(service(parent)).isEqualTo("moe-attention");
                assertThat(parent.getAttributes().get(ServiceTracing.LAYER)).isEqualTo(d.getAttributes().get(ServiceTracing.LAYER));
            }
            Long layer = d.getAttributes().get(ServiceTracing.LAYER);
            assertThat(layer).isBetween(0L, (long) moeLayers - 1);
            List<Long> experts = d.getAttributes().get(ServiceTracing.EXPERT_IDS);
            List<Long> counts = d.getAttributes().get(ServiceTracing.EXPERT_TOKEN_COUNTS);
            long rows = d.getAttributes().get(ServiceTracing.TOKEN_COUNT);
            assertThat(experts).isNotEmpty().doesNotHaveDuplicates().hasSameSizeAs(counts);
            assertThat(counts.stream().mapToLong(Long::longValue).sum()).isEqualTo(rows);
            assertThat(d.getAttributes().get(ServiceTracing.BYTES)).isEqualTo(rows * bytesPerRow);

            List<SpanData> batches = spans.stream().filter(s -> s.getParentSpanId().equals(d.getSpanId())).toList();
            assertThat(batches).as("expert batches of dispatch %s", d).hasSameSizeAs(experts);
            for (SpanData b : batches) {
                assertThat(b.getName()).isEqualTo("moe.expert.batch");
                assertThat(b.getKind()).isEqualTo(SpanKind.SERVER);
                assertThat(service(b)).isEqualTo("moe-expert");
                assertThat(b.getAttributes().get(ServiceTracing.LAYER)).isEqualTo(layer);
                long expert = b.getAttributes().get(ServiceTracing.EXPERT_ID);
                assertThat(instance(b)).isEqualTo(expert < 4 ? "expert-0" : "expert-1");
                int at = experts.indexOf(expert);
                assertThat(at).as("expert %d in the dispatch's expert ids %s", expert, experts).isNotNegative();
                assertThat(b.getAttributes().get(ServiceTracing.TOKEN_COUNT)).isEqualTo(counts.get(at));
                assertThat(b.getAttributes().get(ServiceTracing.BYTES)).isEqualTo(counts.get(at) * bytesPerRow);
            }
        }
        List<SpanData> expertBatches = named(spans, "moe.expert.batch");
        assertThat(expertBatches.stream().map(ClusterTracingTest::instance).distinct().toList())
                .containsExactlyInAnyOrder("expert-0", "expert-1");
        assertThat(expertBatches).allSatisfy(b -> assertThat(byId.get(b.getParentSpanId()).getName()).isEqualTo("moe.dispatch"));
    }

    @org.junit.jupiter.api.Test
    void anHttpRequestIsOneTraceUnderTheClientsTraceparent(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        try (OpenAiCluster c = new OpenAiCluster(tmp, TracingOptions.exportingTo(exporter, LayerSampling.NONE))) {
            String traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
            String parentId = "00f067aa0ba902b7";
            HttpResponse<String> r = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create(c.base + "/v1/chat/completions"))
                            .header("content-type", "application/json")
                            .header("traceparent", "00-" + traceId + "-" + parentId + "-01")
                            .POST(HttpRequest.BodyPublishers.ofString("{\"messages\": [{\"role\": \"user\","
                                    + " \"content\": \"Hi\"}], \"max_tokens\": 3, \"ignore_eos\": true}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            List<SpanData> spans = exporter.getFinishedSpanItems();
            while ((named(spans, "POST /v1/chat/completions").isEmpty()
                    || named(spans, "moe.v1.internal.AttentionWorker/Run").size() < 2) && System.nanoTime() < deadline) {
                Thread.sleep(20);
                spans = exporter.getFinishedSpanItems();
            }
            SpanData request = named(spans, "POST /v1/chat/completions").getFirst();
            assertThat(request.getKind()).isEqualTo(SpanKind.SERVER);
            assertThat(service(request)).isEqualTo("moe-router");
            assertThat(request.getTraceId()).as("the client's trace").isEqualTo(traceId);
            assertThat(request.getParentSpanId()).as("the client's span is the parent").isEqualTo(parentId);
            assertThat(request.getAttributes().get(AttributeKey.longKey(
                    "http.response.status_code"))).isEqualTo(200L);
            assertThat(request.getAttributes().get(AttributeKey.stringKey("http.route")))
                    .isEqualTo("/v1/chat/completions");
            Map<String, SpanData> byId = spans.stream().collect(Collectors.toMap(SpanData::getSpanId, Function.identity()));
            SpanData run = named(spans, "moe.v1.internal.AttentionWorker/Run").stream()
                    .filter(s -> s.getKind() == SpanKind.SERVER).findFirst().orElseThrow();
            assertThat(service(run)).isEqualTo("moe-attention");
            assertThat(run.getTraceId()).isEqualTo(traceId);
            assertThat(hasAncestor(run, byId, s -> s == request)).isTrue();
            assertThat(named(spans, "attention.step")).isNotEmpty().allSatisfy(step ->
                    assertThat(step.getTraceId()).isEqualTo(traceId));
        }
    }

    @ParameterizedTest(name = "embedded router: {0}")
    @ValueSource(booleans = {false, true})
    void everyNthStepHasLayerSpansAndExpertsTraceNothingForTheOthers(boolean embedded) throws Exception {
        Cluster c = start(embedded, TracingOptions.exportingTo(exporter, new LayerSampling(3)));
        c.inference().generate(ClusterEndToEndTest.request(ClusterEndToEndTest.prompt(5, 2)));
        List<SpanData> spans = spansWhenComplete();
        Map<String, SpanData> byId = spans.stream().collect(Collectors.toMap(SpanData::getSpanId, Function.identity()));

        List<SpanData> steps = named(spans, "attention.step");
        assertThat(steps).hasSize(ClusterEndToEndTest.NEW_TOKENS);
        List<SpanData> sampled = steps.stream()
                .filter(s -> s.getAttributes().get(ServiceTracing.STEP) % 3 == 0).toList();
        assertThat(sampled).hasSize((ClusterEndToEndTest.NEW_TOKENS + 2) / 3)
                .allSatisfy(s -> assertThat(s.getAttributes().get(ServiceTracing.LAYER_SPANS_ATTRIBUTE)).isTrue());
        assertThat(steps).filteredOn(s -> s.getAttributes().get(ServiceTracing.STEP) % 3 != 0)
                .allSatisfy(s -> assertThat(s.getAttributes().get(ServiceTracing.LAYER_SPANS_ATTRIBUTE)).isFalse());

        List<SpanData> dispatches = named(spans, "moe.dispatch");
        assertThat(dispatches).hasSize(sampled.size() * c.config().numLayers());
        assertThat(dispatches).allSatisfy(d -> assertThat(hasAncestor(d, byId, sampled::contains)).isTrue());
        assertThat(named(spans, "moe.layer")).hasSize(embedded ? 0 : sampled.size() * c.config().numLayers());
        long expected = dispatches.stream().mapToLong(d -> d.getAttributes().get(ServiceTracing.EXPERT_IDS).size()).sum();
        List<SpanData> batches = named(spans, "moe.expert.batch");
        assertThat(batches).hasSize((int) expected)
                .allSatisfy(b -> assertThat(byId.get(b.getParentSpanId()).getName()).isEqualTo("moe.dispatch"));
    }
}
