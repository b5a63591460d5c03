package io.moecluster.router.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionServer;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import io.moecluster.router.RouterServer;
import io.moecluster.router.chat.ChatTemplate;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The OpenAI-compatible API over real HTTP on loopback, in front of a real attention server over
 * gRPC, on a generated tiny Mixtral (which ships a chat template): the same tokens as gRPC, the
 * chunk format of streams, errors in OpenAI's error object, and a client that leaves.
 */
class OpenAiHttpTest {
    static final EngineOptions ENGINE = new EngineOptions(1, 16, 4096);
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path modelDir;

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private AttentionServer attention;
    private RouterServer router;
    private ManagedChannel channel;
    private String base;

    @BeforeAll
    static void generateModel() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 11, modelDir);
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    void start(int maxActiveRequests) throws IOException {
        attention = AttentionServer.start(new AttentionServer.Config(modelDir, "127.0.0.1", 0, ENGINE, 4, 16));
        toClose.add(attention);
        router = RouterServer.start(new RouterServer.Config(modelDir, "127.0.0.1", 0, List.of(attention.address()),
                maxActiveRequests, 0, List.of()).withHttp(freePort(), null, "tiny-mixtral", null));
        toClose.add(router);
        assertThat(router.httpUrl()).isEqualTo("http://127.0.0.1:" + router.httpPort() + "/v1");
        base = "http://127.0.0.1:" + router.httpPort();
        channel = NettyChannelBuilder.forAddress("127.0.0.1", router.port()).usePlaintext().build();
        toClose.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    }

    record Reply(int status, JsonNode body) {
    }

    Reply post(String path, String json) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(60)).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    Reply get(String path) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body().isEmpty() ? null : JSON.readTree(r.body()));
    }

    /** The events of a server-sent event stream: each data line's JSON, "[DONE]" as a text node. */
    List<JsonNode> stream(String path, String json) throws Exception {
        HttpResponse<InputStream> r = http.send(HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(60)).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofInputStream());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("content-type").orElse("")).startsWith("text/event-stream");
        List<JsonNode> events = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("data: ")) {
                    String data = line.substring(6);
                    events.add(data.equals("[DONE]") ? JSON.getNodeFactory().textNode(data) : JSON.readTree(data));
                } else {
                    assertThat(line).as("events are separated by blank lines").isEmpty();
                }
            }
        }
        return events;
    }

    GenerateResponse grpcGreedy(int[] prompt, int maxTokens) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int id : prompt) {
            ids.addIds(id);
        }
        return InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS).generate(
                GenerateRequest.newBuilder().setTokenIds(ids).setSampling(SamplingParameters.newBuilder()
                        .setTemperature(0).setMaxTokens(maxTokens).setIgnoreEos(true)).build());
    }

    @Test
    void greedyCompletionsWithTokenIdsAreTheGrpcTokens() throws Exception {
        start(8);
        int[] prompt = {1, 72, 101, 108, 108, 111, 35, 119};
        GenerateResponse grpc = grpcGreedy(prompt, 12);
        Reply r = post("/v1/completions", "{\"model\": \"tiny-mixtral\", \"prompt\": [1, 72, 101, 108, 108, 111, 35, 119],"
                + " \"max_tokens\": 12, \"temperature\": 0, \"ignore_eos\": true, \"return_token_ids\": true}");
        assertThat(r.status()).isEqualTo(200);
        JsonNode choice = r.body().get("choices").get(0);
        assertThat(JSON.convertValue(choice.get("token_ids"), int[].class))
                .containsExactly(grpc.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray());
        assertThat(choice.get("text").asText()).isEqualTo(grpc.getText());
        assertThat(choice.get("finish_reason").asText()).isEqualTo("length");
        assertThat(r.body().get("object").asText()).isEqualTo("text_completion");
        assertThat(r.body().get("id").asText()).startsWith("cmpl-");
        assertThat(r.body().get("model").asText()).isEqualTo("tiny-mixtral");
        assertThat(r.body().get("usage").get("prompt_tokens").asInt()).isEqualTo(8);
        assertThat(r.body().get("usage").get("completion_tokens").asInt()).isEqualTo(12);
        assertThat(r.body().get("usage").get("total_tokens").asInt()).isEqualTo(20);
        assertThat(JSON.convertValue(r.body().get("prompt_token_ids"), int[].class)).containsExactly(prompt);

        // Streamed, the deltas add up to the same text; the last events are the finish, the usage and [DONE].
        List<JsonNode> events = stream("/v1/completions", "{\"prompt\": [1, 72, 101, 108, 108, 111, 35, 119],"
                + " \"max_tokens\": 12, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true,"
                + " \"stream_options\": {\"include_usage\": true}}");
        StringBuilder text = new StringBuilder();
        for (JsonNode e : events.subList(0, events.size() - 2)) {
            assertThat(e.get("object").asText()).isEqualTo("text_completion");
            assertThat(e.get("usage").isNull()).isTrue();
            text.append(e.get("choices").get(0).get("text").asText());
        }
        assertThat(text.toString()).isEqualTo(grpc.getText());
        JsonNode finish = events.get(events.size() - 3).get("choices").get(0);
        assertThat(finish.get("finish_reason").asText()).isEqualTo("length");
        JsonNode usage = events.get(events.size() - 2);
        assertThat(usage.get("choices")).isEmpty();
        assertThat(usage.get("usage").get("completion_tokens").asInt()).isEqualTo(12);
        assertThat(events.getLast().asText()).isEqualTo("[DONE]");
    }

    @Test
    void chatRendersTheTemplateAndStreamsOpenAiChunks() throws Exception {
        start(8);
        String messages = "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}]";
        Reply r = post("/v1/chat/completions", "{\"model\": \"tiny-mixtral\", \"messages\": " + messages
                + ", \"max_completion_tokens\": 10, \"temperature\": 0, \"ignore_eos\": true, \"return_token_ids\": true}");
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.body().get("object").asText()).isEqualTo("chat.completion");
        assertThat(r.body().get("id").asText()).startsWith("chatcmpl-");
        JsonNode choice = r.body().get("choices").get(0);
        assertThat(choice.get("message").get("role").asText()).isEqualTo("assistant");
        assertThat(choice.get("logprobs").isNull()).isTrue();
        // The prompt is the rendered template, tokenized without adding BOS (the template writes it).
        String rendered = ChatTemplate.load(modelDir, null).render(List.of(Map.of("role", "system", "content", "Be brief."),
                Map.of("role", "user", "content", "Hi")), true, Map.of());
        assertThat(rendered).isEqualTo("<s>[SYS] Be brief. [/SYS][INST] Hi [/INST]");
        int[] prompt;
        try (TextTokenizer tok = TextTokenizer.load(modelDir, 1)) {
            prompt = tok.encode(rendered, false);
        }
        assertThat(prompt[0]).as("<s> is the BOS token").isEqualTo(1);
        assertThat(JSON.convertValue(r.body().get("prompt_token_ids"), int[].class)).containsExactly(prompt);
        GenerateResponse grpc = grpcGreedy(prompt, 10);
        assertThat(choice.get("message").get("content").asText()).isEqualTo(grpc.getText());

        List<JsonNode> events = stream("/v1/chat/completions", "{\"messages\": " + messages
                + ", \"max_tokens\": 10, \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}");
        JsonNode first = events.getFirst();
        assertThat(first.get("object").asText()).isEqualTo("chat.completion.chunk");
        assertThat(first.get("choices").get(0).get("delta").get("role").asText()).isEqualTo("assistant");
        assertThat(first.has("usage")).as("no usage without include_usage").isFalse();
        StringBuilder text = new StringBuilder();
        for (JsonNode e : events.subList(1, events.size() - 2)) {
            JsonNode c = e.get("choices").get(0);
            assertThat(c.get("finish_reason").isNull()).isTrue();
            text.append(c.get("delta").get("content").asText());
        }
        assertThat(text.toString()).isEqualTo(grpc.getText());
        JsonNode last = events.get(events.size() - 2).get("choices").get(0);
        assertThat(last.get("delta").isEmpty()).isTrue();
        assertThat(last.get("finish_reason").asText()).isEqualTo("length");
        assertThat(events.getLast().asText()).isEqualTo("[DONE]");
    }

    @Test
    void stopNLogprobsAndSeedOverHttp() throws Exception {
        start(8);
        String free = post("/v1/completions", "{\"prompt\": \"hello moe\", \"max_tokens\": 20, \"temperature\": 0,"
                + " \"ignore_eos\": true}").body().get("choices").get(0).get("text").asText();
        String stop = free.substring(6, 9);
        Reply stopped = post("/v1/completions", "{\"prompt\": \"hello moe\", \"max_tokens\": 20, \"temperature\": 0,"
                + " \"ignore_eos\": true, \"stop\": [" + JSON.writeValueAsString(stop) + "]}");
        assertThat(stopped.body().get("choices").get(0).get("text").asText()).isEqualTo(free.substring(0, free.indexOf(stop)));
        assertThat(stopped.body().get("choices").get(0).get("finish_reason").asText()).isEqualTo("stop");

        String sampled = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 6, \"n\": 3,"
                + " \"temperature\": 1.0, \"seed\": 5, \"ignore_eos\": true, \"logprobs\": true, \"top_logprobs\": 4,"
                + " \"user\": \"someone\"}";
        Reply a = post("/v1/chat/completions", sampled);
        assertThat(a.status()).isEqualTo(200);
        assertThat(a.body().get("choices")).hasSize(3);
        assertThat(a.body().get("usage").get("completion_tokens").asInt()).isEqualTo(18);
        for (JsonNode c : a.body().get("choices")) {
            JsonNode content = c.get("logprobs").get("content");
            assertThat(content).hasSize(6);
            for (JsonNode t : content) {
                assertThat(t.get("top_logprobs")).hasSize(4);
                assertThat(t.get("logprob").asDouble()).isNegative()
                        .isLessThanOrEqualTo(t.get("top_logprobs").get(0).get("logprob").asDouble());
                byte[] bytes = new byte[t.get("bytes").size()];
                for (int i = 0; i < bytes.length; i++) {
                    bytes[i] = (byte) t.get("bytes").get(i).asInt();
                }
                assertThat(new String(bytes, StandardCharsets.UTF_8)).isEqualTo(t.get("token").asText());
            }
        }
        // The same seed gives the same completions; completion i is the request for one with seed + i.
        assertThat(post("/v1/chat/completions", sampled).body().get("choices")).isEqualTo(a.body().get("choices"));
        JsonNode second = post("/v1/chat/completions", sampled.replace("\"n\": 3", "\"n\": 1").replace("\"seed\": 5",
                "\"seed\": 6")).body().get("choices").get(0);
        assertThat(second.get("message")).isEqualTo(a.body().get("choices").get(1).get("message"));

        // Completions' logprobs: the token columns, and offsets into the text.
        JsonNode lp = post("/v1/completions", "{\"prompt\": \"hello\", \"max_tokens\": 5, \"temperature\": 0,"
                + " \"ignore_eos\": true, \"logprobs\": 2}").body().get("choices").get(0);
        assertThat(lp.get("logprobs").get("tokens")).hasSize(5);
        assertThat(lp.get("logprobs").get("token_logprobs")).hasSize(5);
        assertThat(lp.get("logprobs").get("text_offset").get(0).asInt()).isZero();
        assertThat(lp.get("logprobs").get("top_logprobs").get(0).size()).isBetween(1, 3);
        // echo puts the prompt before the completion.
        JsonNode echoed = post("/v1/completions", "{\"prompt\": \"hello\", \"max_tokens\": 5, \"temperature\": 0,"
                + " \"ignore_eos\": true, \"echo\": true}").body().get("choices").get(0);
        assertThat(echoed.get("text").asText()).isEqualTo("hello" + lp.get("text").asText());
        // n beyond what the attention replica runs at once is refused there, naming n.
        Reply tooMany = post("/v1/completions", "{\"prompt\": \"hello\", \"max_tokens\": 2, \"n\": 5}");
        assertThat(tooMany.status()).isEqualTo(400);
        assertThat(tooMany.body().get("error").get("param").asText()).isEqualTo("n");
    }

    @Test
    void modelsHealthAndErrorsInOpenAisErrorObject() throws Exception {
        start(8);
        Reply models = get("/v1/models");
        assertThat(models.status()).isEqualTo(200);
        assertThat(models.body().get("data").get(0).get("id").asText()).isEqualTo("tiny-mixtral");
        assertThat(models.body().get("data").get(0).get("object").asText()).isEqualTo("model");
        assertThat(get("/v1/models/tiny-mixtral").status()).isEqualTo(200);
        assertThat(get("/v1/models/gpt-4").status()).isEqualTo(404);
        assertThat(get("/health").status()).isEqualTo(200);
        assertThat(get("/metrics").status()).as("metrics are off").isEqualTo(404);
        assertThat(get("/v2/nothing").body().get("error").get("code").asText()).isEqualTo("not_found");

        assertError(post("/v1/chat/completions", "{\"messages\": []}"), 400, "messages");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}],"
                + " \"temperature\": \"hot\"}"), 400, "temperature");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}],"
                + " \"temperature\": -1}"), 400, "temperature");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}],"
                + " \"logprobs\": true, \"top_logprobs\": 21}"), 400, "top_logprobs");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}],"
                + " \"max_completion_tokens\": 0}"), 400, "max_completion_tokens");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\":"
                + " [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}"), 400, "messages[0].content[0].type");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}"), 400,
                "messages");
        assertError(post("/v1/completions", "{\"prompt\": [1, 999]}"), 400, "prompt");
        assertError(post("/v1/completions", "{\"prompt\": \"x\", \"presence_penalty\": 3}"), 400, "presence_penalty");
        assertError(post("/v1/completions", "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": true}}"), 400,
                "stream_options");
        assertError(post("/v1/completions", "not json"), 400, null);
        assertError(post("/v1/completions", "{\"prompt\": \"x\", \"echo\": true, \"logprobs\": 1}"), 400, "echo");
        // Issue 13, defect 6: text past the limit is refused before it is tokenized.
        int limit = Math.max(io.moecluster.router.RequestValidator.MIN_MAX_INPUT_CHARS,
                io.moecluster.router.RequestValidator.MAX_CHARS_PER_POSITION
                        * models.body().get("data").get(0).get("max_model_len").asInt());
        String huge = "x".repeat(limit + 1);
        Reply tooLong = post("/v1/completions", "{\"prompt\": \"" + huge + "\"}");
        assertError(tooLong, 400, "prompt");
        assertThat(tooLong.body().get("error").get("message").asText()).contains("characters; at most");
        assertError(post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + huge + "\"}]}"),
                400, "messages");
        Reply wrongModel = post("/v1/completions", "{\"model\": \"gpt-4\", \"prompt\": \"x\"}");
        assertThat(wrongModel.status()).isEqualTo(404);
        assertThat(wrongModel.body().get("error").get("code").asText()).isEqualTo("model_not_found");
    }

    static void assertError(Reply r, int status, String param) {
        assertThat(r.status()).isEqualTo(status);
        JsonNode error = r.body().get("error");
        assertThat(error.get("message").asText()).isNotEmpty();
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        if (param == null) {
            assertThat(error.get("param").isNull()).isTrue();
        } else {
            assertThat(error.get("param").asText()).isEqualTo(param);
        }
    }

    /** HTTP/1.1 (a closed connection) and HTTP/2 over h2c (a reset stream, what the JDK client negotiates). */
    @ParameterizedTest
    @EnumSource(HttpClient.Version.class)
    void aFullClusterAnswers429AndAClientThatLeavesGivesItsSlotBack(HttpClient.Version version) throws Exception {
        start(1);
        HttpClient client = HttpClient.newBuilder().version(version).build();
        // A long stream holds the only slot.
        HttpResponse<InputStream> held = client.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                .header("content-type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        "{\"prompt\": \"hello\", \"max_tokens\": 4000, \"ignore_eos\": true, \"stream\": true}")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        BufferedReader lines = new BufferedReader(new InputStreamReader(held.body(), StandardCharsets.UTF_8));
        assertThat(lines.readLine()).startsWith("data: ");
        Reply full = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2}");
        assertThat(full.status()).isEqualTo(429);
        assertThat(full.body().get("error").get("type").asText()).isEqualTo("rate_limit_error");
        assertThat(full.body().get("error").get("message").asText()).contains("cluster at capacity");
        // The client goes away: the generation stops and the slot is free again.
        held.body().close();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (attention.loop().runningCount() + attention.loop().queuedCount() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(attention.loop().runningCount()).isZero();
        Reply after = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2, \"ignore_eos\": true}");
        assertThat(after.status()).isEqualTo(200);
        assertThat(after.body().get("usage").get("completion_tokens").asInt()).isEqualTo(2);
    }

    @Test
    void attentionDownIs503() throws Exception {
        start(4);
        attention.close();
        Reply r = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2}");
        assertThat(r.status()).isEqualTo(503);
        assertThat(r.body().get("error").get("type").asText()).isEqualTo("server_error");
        assertThat(r.body().get("error").get("message").asText()).contains("attention replica failed");
    }
}
