package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionNode;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.router.RouterNode;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Each service serves Prometheus metrics; the router's per-expert counters equal the tokens it routed. */
class ClusterMetricsTest {
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    static String scrape(String url) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        return r.body();
    }

    /** The value of {@code metric} with label expert="e", or -1 when absent. */
    static long expertValue(String body, String metric, int expert) {
        Matcher m = Pattern.compile("(?m)^" + metric + "\\{[^}]*expert=\"" + expert + "\"[^}]*} ([0-9.eE+]+)").matcher(body);
        return m.find() ? (long) Double.parseDouble(m.group(1)) : -1;
    }

    @Test
    void perExpertTokenCountersMatchTheTokensRouted() throws Exception {
        Path dir = GoldenModels.dir(GoldenModels.MIXTRAL);
        ModelConfig config = ModelConfig.load(dir);
        EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        ClusterSpec spec = new ClusterEndToEndTest().spec(driver, config, false, false);
        List<ExpertNode> experts = new ArrayList<>();
        for (ClusterSpec.Expert e : spec.experts()) {
            ExpertNode node = ExpertNode.launch(ClusterEndToEndTest.expert(spec, e.id(), dir).maxRows(32)
                    .metricsPort(ServiceMetrics.freePort()));
            experts.add(node);
            open.add(node);
        }
        AttentionNode attention = AttentionNode.launch(ClusterEndToEndTest.attention(spec, dir)
                .metricsPort(ServiceMetrics.freePort()));
        open.add(attention);
        RouterNode router = RouterNode.launch(ClusterEndToEndTest.router(spec, dir).maxActiveRequests(8).maxBatchTokens(32)
                .metricsPort(ServiceMetrics.freePort()));
        open.add(router);
        ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
        open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));

        var inference = InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
        for (int i = 0; i < 3; i++) {
            inference.generate(ClusterEndToEndTest.request(ClusterEndToEndTest.prompt(5 + 4 * i, i)));
        }

        MoeBlock moe = router.moe().moe();
        String routerMetrics = scrape(router.metricsEndpoint());
        long total = 0;
        for (int e = 0; e < config.numExperts(); e++) {
            assertThat(expertValue(routerMetrics, "moe_router_tokens_routed_total", e)).as("expert %d", e)
                    .isEqualTo(moe.tokensRouted(e));
            total += moe.tokensRouted(e);
        }
        assertThat(total).isPositive();
        assertThat(routerMetrics).contains("moe_router_moe_requests_total").contains("moe_dataplane_backpressure_events_total")
                .contains("moe_time_to_first_token_milliseconds_bucket").contains("moe_inter_token_latency_milliseconds_count")
                .contains("moe_active_requests");
        Matcher requests = Pattern.compile("(?m)^moe_requests_total\\{[^}]*outcome=\"length\"[^}]*} ([0-9.]+)").matcher(routerMetrics);
        assertThat(requests.find()).as("moe_requests_total{outcome=length} in%n%s", routerMetrics).isTrue();
        assertThat(Double.parseDouble(requests.group(1))).isEqualTo(3.0);
        Matcher tokens = Pattern.compile("(?m)^moe_completion_tokens_total\\{[^}]*} ([0-9.]+)").matcher(routerMetrics);
        assertThat(tokens.find()).isTrue();
        assertThat(Double.parseDouble(tokens.group(1))).isEqualTo(3.0 * ClusterEndToEndTest.NEW_TOKENS);

        // What the router routed to experts 0-3 is what expert-0 says it served.
        String expertMetrics = scrape(experts.getFirst().metricsEndpoint());
        for (int e = 0; e < 4; e++) {
            assertThat(expertValue(expertMetrics, "moe_expert_tokens_served_total", e)).as("expert-0, expert %d", e)
                    .isEqualTo(moe.tokensRouted(e));
        }
        assertThat(scrape(attention.metricsEndpoint())).contains("moe_attention_running_sequences")
                .contains("moe_attention_queued_sequences");
    }
}
