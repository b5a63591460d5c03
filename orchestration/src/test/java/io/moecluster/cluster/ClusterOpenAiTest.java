package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.cli.MoeCommand;
import io.moecluster.core.io.NpyFile;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.proto.v1.GenerateResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.telemetry.TracingOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenAI-compatible API of a whole cluster (real Aeron, real gRPC and HTTP on loopback, the
 * golden Mixtral): greedy completions of token ids are the gRPC API's and the single-process
 * engine's tokens; log-probabilities are the log-softmax of what {@code moe logits} writes; an
 * expert service that is gone is a 503; {@code /metrics} is the router's Prometheus text; and
 * {@code moe chat --server} talks to it.
 */
class ClusterOpenAiTest {
    static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @TempDir
    Path tmp;

    private OpenAiCluster cluster;

    @AfterEach
    void stop() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    record Reply(int status, String text) {
        JsonNode json() throws Exception {
            return JSON.readTree(text);
        }
    }

    Reply post(String path, String body) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(cluster.base + path))
                .timeout(Duration.ofSeconds(60)).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body());
    }

    Reply get(String url) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body());
    }

    static String ids(int[] tokens) {
        return Arrays.stream(tokens).mapToObj(Integer::toString).collect(Collectors.joining(", ", "[", "]"));
    }

    @Test
    void logprobsAreTheLogSoftmaxOfMoeLogitsAndGreedyTokensAreGrpcs() throws Exception {
        cluster = new OpenAiCluster(tmp, TracingOptions.off());
        GoldenModels.Case sentence = GoldenModels.cases(GoldenModels.MIXTRAL).get(1);
        int[] prompt = sentence.tokens();
        int newTokens = 5;
        Reply r = post("/v1/completions", "{\"model\": \"" + cluster.modelName() + "\", \"prompt\": " + ids(prompt)
                + ", \"max_tokens\": " + newTokens + ", \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": 5,"
                + " \"return_token_ids\": true}");
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        JsonNode choice = r.json().get("choices").get(0);
        int[] generated = JSON.convertValue(choice.get("token_ids"), int[].class);
        assertThat(generated).hasSize(newTokens);

        // The same tokens as the gRPC API and the single-process engine.
        ManagedChannel channel = NettyChannelBuilder.forTarget(cluster.router.address()).usePlaintext().build();
        try {
            GenerateResponse grpc = InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
                    .generate(ClusterEndToEndTest.request(prompt).toBuilder().setSampling(ClusterEndToEndTest.request(prompt)
                            .getSampling().toBuilder().setMaxTokens(newTokens).setTemperature(0)).build());
            assertThat(grpc.getTokenIdsList()).containsExactly(IntStream.of(generated).boxed().toArray(Integer[]::new));
            assertThat(grpc.getText()).isEqualTo(choice.get("text").asText());
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        assertThat(Arrays.copyOf(ClusterEndToEndTest.singleProcessGreedy(cluster.model, prompt), newTokens))
                .containsExactly(generated);

        // moe logits over prompt + completion: row p-1+t is the distribution token t was drawn from.
        int[] all = IntStream.concat(IntStream.of(prompt), IntStream.of(generated)).toArray();
        Path npy = tmp.resolve("logits.npy");
        StringWriter err = new StringWriter();
        int exit = MoeCommand.execute(new String[] {"logits", "--model", cluster.model.toString(), "--tokens",
                Arrays.stream(all).mapToObj(Integer::toString).collect(Collectors.joining(",")), "--out", npy.toString()},
                new PrintWriter(new StringWriter()), new PrintWriter(err));
        assertThat(exit).as(err.toString()).isZero();
        float[][] logits = NpyFile.readF32(npy);
        JsonNode lp = choice.get("logprobs");
        for (int t = 0; t < newTokens; t++) {
            double[] logSoftmax = logSoftmax(logits[prompt.length - 1 + t]);
            assertThat(lp.get("token_logprobs").get(t).asDouble()).as("token %d", t)
                    .isCloseTo(logSoftmax[generated[t]], within(1e-4));
            // The five alternatives are the five most likely tokens, with their log-probabilities.
            Integer[] order = IntStream.range(0, logSoftmax.length).boxed()
                    .sorted((a, b) -> Double.compare(logSoftmax[b], logSoftmax[a])).toArray(Integer[]::new);
            JsonNode top = lp.get("top_logprobs").get(t);
            assertThat(top.get(lp.get("tokens").get(t).asText()).asDouble()).isCloseTo(logSoftmax[generated[t]],
                    within(1e-4));
            double best = top.properties().stream().mapToDouble(e -> e.getValue().asDouble()).max().orElseThrow();
            assertThat(best).isCloseTo(logSoftmax[order[0]], within(1e-4));
        }
        // Greedy picks the most likely token, so its log-probability is the best one.
        assertThat(lp.get("token_logprobs").get(0).asDouble()).isCloseTo(logSoftmax(logits[prompt.length - 1])[
                generated[0]], within(1e-4));
    }

    static double[] logSoftmax(float[] row) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        double lse = max + Math.log(sum);
        double[] out = new double[row.length];
        for (int i = 0; i < row.length; i++) {
            out[i] = row[i] - lse;
        }
        return out;
    }

    @Test
    void metricsHealthAndAnExpertThatIsGoneIs503() throws Exception {
        cluster = new OpenAiCluster(tmp, TracingOptions.off());
        assertThat(get(cluster.base + "/health").status()).isEqualTo(200);
        Reply ok = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                + " \"max_tokens\": 3, \"ignore_eos\": true}");
        assertThat(ok.status()).as(ok.text()).isEqualTo(200);
        Reply metrics = get(cluster.base + "/metrics");
        assertThat(metrics.status()).isEqualTo(200);
        assertThat(metrics.text()).contains("moe_requests_total").contains("moe_completion_tokens_total")
                .contains("moe_router_tokens_routed_total");
        // The same families as the router's own metrics endpoint.
        assertThat(families(metrics.text())).isEqualTo(families(get(cluster.router.metricsEndpoint()).text()));

        cluster.stopExpert1();
        Reply gone = post("/v1/completions", "{\"prompt\": [1, 72, 101], \"max_tokens\": 4, \"ignore_eos\": true}");
        assertThat(gone.status()).as(gone.text()).isEqualTo(503);
        JsonNode error = gone.json().get("error");
        assertThat(error.get("type").asText()).isEqualTo("server_error");
        assertThat(error.get("message").asText()).contains("expert-1");
    }

    static Set<String> families(String prometheus) {
        return prometheus.lines().filter(l -> l.startsWith("# TYPE ")).map(l -> l.split(" ")[2])
                .collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void moeChatTalksToTheClustersHttpApi() throws Exception {
        cluster = new OpenAiCluster(tmp, TracingOptions.off());
        String expected = post("/v1/chat/completions", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                + " {\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 6, \"temperature\": 0,"
                + " \"ignore_eos\": true}").json().get("choices").get(0).get("message").get("content").asText();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = MoeCommand.execute(new String[] {"chat", "--server", cluster.router.httpUrl(), "--system", "Be brief.",
                "--message", "Hello", "--max-tokens", "6", "--ignore-eos"}, new PrintWriter(out, true),
                new PrintWriter(err, true));
        assertThat(exit).as(err.toString()).isZero();
        assertThat(out.toString()).isEqualTo(expected + System.lineSeparator());
    }
}
