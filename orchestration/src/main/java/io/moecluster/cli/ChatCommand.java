package io.moecluster.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.router.chat.ChatTemplate;
import io.moecluster.router.chat.ChatTemplateException;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import picocli.CommandLine.Command;
import io.moecluster.service.security.ClientSecurity;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code moe chat}: a conversation in the terminal. Each line read is a user turn; the reply
 * streams as it is generated. Over a cluster's OpenAI-compatible API ({@code --server}, else the
 * local cluster {@code moe up} started), or in this process ({@code --model}) with the model's chat
 * template. {@code /reset} starts over, {@code /exit} (or the end of input) ends.
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Chats in the terminal: each line is a user message, the reply streams back. Talks to a cluster's "
                + "OpenAI-compatible API (--server HOST:PORT, default: the local cluster's) or runs the model here (--model "
                + "DIR), with the model's chat template. /reset clears the conversation, /exit or end of input quits.")
final class ChatCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where conversations are read from; tests replace it. */
    static volatile InputStream input = System.in;

    @Spec
    CommandSpec spec;

    @Mixin
    EngineFlags engine;

    @Mixin
    SamplingFlags sampling;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    /** The bearer token of remote requests, or null. */
    private String token;

    @Option(names = "--server", paramLabel = "HOST:PORT",
            description = "The router's HTTP API (moe up prints it; http://HOST:PORT/v1 works too).")
    String server;

    @Option(names = "--system", paramLabel = "TEXT", description = "A system message to begin the conversation with.")
    String system;

    @Option(names = "--message", paramLabel = "TEXT",
            description = "Send this user message (repeat for several turns) instead of reading the terminal, print each reply, and exit.")
    List<String> oneShot = new ArrayList<>();

    @Option(names = "--chat-template", paramLabel = "FILE",
            description = "With --model: a Jinja chat template to use instead of the model's.")
    Path chatTemplate;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        SamplingParams params = sampling.params();
        if (server != null && engine.model != null) {
            throw new ParameterException(spec.commandLine(), "--model and --server exclude each other");
        }
        List<Map<String, Object>> messages = new ArrayList<>();
        if (system != null) {
            messages.add(message("system", system));
        }
        Replier replier;
        AutoCloseable resources;
        if (engine.model != null) {
            Engine e = Engine.open(engine.model, engine.options());
            TextTokenizer tokenizer;
            try {
                tokenizer = TextTokenizer.load(engine.model, e.config().bosTokenId());
            } catch (RuntimeException ex) {
                e.close();
                throw ex;
            }
            ChatTemplate template = ChatTemplate.load(engine.model, chatTemplate);
            if (!template.isPresent()) {
                tokenizer.close();
                e.close();
                throw new IllegalArgumentException(engine.model + " has no chat template; give one with --chat-template FILE");
            }
            LocalGenerator generator = new LocalGenerator(e, tokenizer);
            replier = (conversation, print) -> {
                String prompt;
                try {
                    prompt = template.render(conversation, true, Map.of());
                } catch (ChatTemplateException ex) {
                    throw new IllegalArgumentException("chat template: " + ex.getMessage());
                }
                return generator.run(tokenizer.encode(prompt, false), params, sampling.stop, print).text();
            };
            resources = () -> {
                tokenizer.close();
                e.close();
            };
        } else {
            ClientSecurity security = client.security();
            String base = baseUrl(server != null ? server : localServer(), security.tls());
            HttpClient.Builder builder = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10));
            if (security.tls() || base.startsWith("https:")) {
                builder.sslContext(security.sslContext());
            }
            token = security.token();
            HttpClient http = builder.build();
            replier = (conversation, print) -> remoteReply(http, base, conversation, print);
            resources = http::close;
        }
        InputStream source = oneShot.isEmpty() ? input
                : new ByteArrayInputStream((String.join("\n", oneShot) + "\n").getBytes(StandardCharsets.UTF_8));
        boolean interactive = oneShot.isEmpty() && System.console() != null && input == System.in;
        try (resources; BufferedReader in = new BufferedReader(new InputStreamReader(source, StandardCharsets.UTF_8))) {
            while (true) {
                if (interactive) {
                    err.print("you> ");
                    err.flush();
                }
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit") || line.strip().equals("/quit")) {
                    break;
                }
                if (line.isBlank()) {
                    continue;
                }
                if (line.strip().equals("/reset")) {
                    messages.subList(system != null ? 1 : 0, messages.size()).clear();
                    continue;
                }
                messages.add(message("user", line));
                String reply = replier.reply(messages, delta -> {
                    out.print(delta);
                    out.flush();
                });
                out.println();
                out.flush();
                messages.add(message("assistant", reply));
            }
        }
        return 0;
    }

    private interface Replier {
        /** Streams the assistant's reply to {@code print} and returns it whole. */
        String reply(List<Map<String, Object>> conversation, Consumer<String> print) throws Exception;
    }

    private static Map<String, Object> message(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    private String localServer() throws IOException {
        ClusterState state = stateDir.state();
        int port = state.launchOptions().httpPort();
        if (port <= 0) {
            throw new IllegalArgumentException("the local cluster in " + state.dir() + " has no HTTP API; pass --server");
        }
        return "127.0.0.1:" + port;
    }

    /** {@code http://HOST:PORT} from {@code HOST:PORT}, {@code http://HOST:PORT} or {@code http://HOST:PORT/v1}. */
    static String baseUrl(String server) {
        return baseUrl(server, false);
    }

    /** As {@link #baseUrl(String)}; a bare {@code HOST:PORT} gets {@code https://} when {@code tls}. */
    static String baseUrl(String server, boolean tls) {
        String s = server.contains("://") ? server : (tls ? "https://" : "http://") + server;
        while (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        return s.endsWith("/v1") ? s.substring(0, s.length() - 3) : s;
    }

    private String remoteReply(HttpClient http, String base, List<Map<String, Object>> conversation,
                               Consumer<String> print) throws Exception {
        ObjectNode body = JSON.createObjectNode();
        body.set("messages", JSON.valueToTree(conversation));
        body.put("stream", true).put("max_tokens", sampling.maxTokens).put("temperature", sampling.temperature)
                .put("top_p", sampling.topP).put("top_k", sampling.topK).put("seed", sampling.seed)
                .put("min_p", sampling.minP).put("presence_penalty", sampling.presencePenalty)
                .put("frequency_penalty", sampling.frequencyPenalty).put("repetition_penalty", sampling.repetitionPenalty)
                .put("ignore_eos", sampling.ignoreEos);
        ArrayNode stop = body.putArray("stop");
        sampling.stop.forEach(stop::add);
        ArrayNode stopIds = body.putArray("stop_token_ids");
        for (int id : sampling.stopTokenIds) {
            stopIds.add(id);
        }
        HttpResponse<InputStream> r;
        try {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions"))
                    .header("content-type", "application/json").timeout(Duration.ofMinutes(10))
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)));
            if (token != null) {
                request.header("authorization", "Bearer " + token);
            }
            r = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot reach " + base + ": " + e);
        }
        StringBuilder reply = new StringBuilder();
        try (BufferedReader events = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            if (r.statusCode() != 200) {
                JsonNode error = JSON.readTree(events).path("error");
                throw new IllegalArgumentException(base + " answered " + r.statusCode() + ": "
                        + error.path("message").asText("(no message)"));
            }
            String line;
            while ((line = events.readLine()) != null) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                    continue;
                }
                JsonNode event = JSON.readTree(line.substring(6));
                if (event.has("error")) {
                    throw new IllegalArgumentException(base + ": " + event.get("error").path("message").asText());
                }
                for (JsonNode choice : event.path("choices")) {
                    String delta = choice.path("delta").path("content").asText("");
                    if (!delta.isEmpty()) {
                        reply.append(delta);
                        print.accept(delta);
                    }
                }
            }
        }
        return reply.toString();
    }
}
