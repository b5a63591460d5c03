package io.moecluster.router.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.TokenLogprobs;
import io.moecluster.proto.v1.TopLogprob;
import io.moecluster.proto.v1.Usage;
import io.moecluster.router.CompletionListener;
import io.moecluster.router.GenerationError;
import io.moecluster.telemetry.HttpServerSpan;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One request's completions as OpenAI's responses: a {@code chat.completion} or
 * {@code text_completion} object at the end, or, streaming, server-sent events in the chunk
 * format ({@code chat.completion.chunk} / {@code text_completion}) ending with
 * {@code data: [DONE]}, with a usage chunk first when {@code stream_options.include_usage}.
 *
 * <p>The generation service calls this from gRPC threads; every call is handed to the request's
 * Vert.x context, which runs them in order on the connection's event loop. A failure before
 * anything was sent is an error response with its status (429 full, 503 unavailable); during a
 * stream it is an {@code error} event, and the stream ends without {@code [DONE]}.
 */
final class OpenAiResponder implements CompletionListener {
    /** What OpenAI reports for a log-probability of zero probability (JSON has no -Infinity). */
    private static final double MIN_LOGPROB = -9999.0;

    private final HttpServerResponse response;
    private final Context context;
    private final OpenAiRequest request;
    private final TokenTexts texts;
    private final HttpServerSpan span;
    private final String id;
    private final long created;
    private final String model;
    private final StringBuilder[] text;
    private final ObjectNode[] logprobs;
    private final String[] finish;
    private final ArrayNode[] tokenIds;
    private boolean started;

    OpenAiResponder(HttpServerResponse response, Context context, OpenAiRequest request, TokenTexts texts,
                    HttpServerSpan span, String model) {
        this.response = response;
        this.context = context;
        this.request = request;
        this.texts = texts;
        this.span = span;
        this.model = model;
        this.id = (request.chat ? "chatcmpl-" : "cmpl-") + request.prepared.requestId().replace("-", "");
        this.created = System.currentTimeMillis() / 1000;
        int n = request.prepared.n();
        this.text = new StringBuilder[n];
        this.logprobs = new ObjectNode[n];
        this.finish = new String[n];
        this.tokenIds = new ArrayNode[n];
        for (int i = 0; i < n; i++) {
            tokenIds[i] = OpenAiRequest.json().createArrayNode();
            text[i] = new StringBuilder();
            if (request.logprobs) {
                logprobs[i] = emptyLogprobs();
            }
        }
    }

    private ObjectNode emptyLogprobs() {
        ObjectNode lp = OpenAiRequest.object();
        if (request.chat) {
            lp.putArray("content");
        } else {
            lp.putArray("tokens");
            lp.putArray("token_logprobs");
            lp.putArray("top_logprobs");
            lp.putArray("text_offset");
        }
        return lp;
    }

    @Override
    public void onToken(int index, int tokenId, String delta, TokenLogprobs lp) {
        context.runOnContext(v -> token(index, tokenId, delta, lp));
    }

    @Override
    public void onTrailingText(int index, String delta) {
        context.runOnContext(v -> token(index, -1, delta, null));
    }

    @Override
    public void onChoiceFinished(int index, FinishReason reason, Usage usage) {
        String name = reason == FinishReason.FINISH_REASON_LENGTH ? "length" : "stop";
        context.runOnContext(v -> choiceFinished(index, name));
    }

    @Override
    public void onFinished(Usage usage) {
        context.runOnContext(v -> finished(usage));
    }

    @Override
    public void onFailed(GenerationError error) {
        context.runOnContext(v -> failed(error));
    }

    private boolean gone() {
        return response.closed() || response.ended();
    }

    private void token(int index, int tokenId, String delta, TokenLogprobs lp) {
        if (gone()) {
            return;
        }
        if (tokenId >= 0) {
            tokenIds[index].add(tokenId);
        }
        int offset = (request.echo == null ? 0 : request.echo.length()) + text[index].length();
        text[index].append(delta);
        ObjectNode entry = lp == null ? null : logprobEntry(lp, offset);
        if (entry != null) {
            append(logprobs[index], entry);
        }
        boolean ids = request.returnTokenIds && tokenId >= 0;
        if (!request.stream || (delta.isEmpty() && entry == null && !ids)) {
            return;
        }
        startStream();
        ObjectNode choice = OpenAiRequest.object().put("index", index);
        if (request.chat) {
            choice.putObject("delta").put("content", delta);
        } else {
            choice.put("text", delta);
        }
        if (ids) {
            choice.putArray("token_ids").add(tokenId);
        }
        if (entry != null) {
            ObjectNode one = emptyLogprobs();
            append(one, entry);
            choice.set("logprobs", one);
        } else {
            choice.putNull("logprobs");
        }
        choice.putNull("finish_reason");
        send(chunk(choice));
    }

    /** The chat entry ({token, logprob, bytes, top_logprobs}) or the completions columns of one token. */
    private ObjectNode logprobEntry(TokenLogprobs lp, int offset) {
        String token = texts.text(lp.getTokenId());
        ObjectNode e = OpenAiRequest.object();
        e.put("token", token).put("logprob", clamp(lp.getLogprob()));
        if (request.chat) {
            bytes(e.putArray("bytes"), token);
            ArrayNode top = e.putArray("top_logprobs");
            for (TopLogprob t : lp.getTopLogprobsList()) {
                String alt = texts.text(t.getTokenId());
                ObjectNode a = top.addObject().put("token", alt).put("logprob", clamp(t.getLogprob()));
                bytes(a.putArray("bytes"), alt);
            }
        } else {
            ObjectNode top = OpenAiRequest.object();
            top.put(token, clamp(lp.getLogprob()));
            for (TopLogprob t : lp.getTopLogprobsList()) {
                String alt = texts.text(t.getTokenId());
                if (!top.has(alt)) {
                    top.put(alt, clamp(t.getLogprob()));
                }
            }
            e.set("top", top);
            e.put("offset", offset);
        }
        return e;
    }

    /** Adds one token's entry to a logprobs object of this request's shape. */
    private void append(ObjectNode logprobs, ObjectNode entry) {
        if (request.chat) {
            ((ArrayNode) logprobs.get("content")).add(entry);
        } else {
            ((ArrayNode) logprobs.get("tokens")).add(entry.get("token"));
            ((ArrayNode) logprobs.get("token_logprobs")).add(entry.get("logprob"));
            ((ArrayNode) logprobs.get("top_logprobs")).add(entry.get("top"));
            ((ArrayNode) logprobs.get("text_offset")).add(entry.get("offset"));
        }
    }

    private static double clamp(float logprob) {
        return Float.isFinite(logprob) ? logprob : MIN_LOGPROB;
    }

    private static void bytes(ArrayNode out, String token) {
        for (byte b : TokenTexts.bytes(token)) {
            out.add(b & 0xff);
        }
    }

    private void choiceFinished(int index, String reason) {
        finish[index] = reason;
        if (!request.stream || gone()) {
            return;
        }
        startStream();
        ObjectNode choice = OpenAiRequest.object().put("index", index);
        if (request.chat) {
            choice.putObject("delta");
        } else {
            choice.put("text", "");
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", reason);
        send(chunk(choice));
    }

    private void finished(Usage usage) {
        if (gone()) {
            span.end(499, null);
            return;
        }
        if (request.stream) {
            startStream();
            if (request.includeUsage) {
                ObjectNode last = header(request.chat ? "chat.completion.chunk" : "text_completion");
                last.putArray("choices");
                last.set("usage", usage(usage));
                send(last);
            }
            response.end("data: [DONE]\n\n");
            span.end(200, null);
            return;
        }
        ObjectNode out = header(request.chat ? "chat.completion" : "text_completion");
        ArrayNode choices = out.putArray("choices");
        for (int i = 0; i < text.length; i++) {
            ObjectNode c = choices.addObject().put("index", i);
            String content = (request.echo == null ? "" : request.echo) + text[i];
            if (request.chat) {
                c.putObject("message").put("role", "assistant").put("content", content);
            } else {
                c.put("text", content);
            }
            if (logprobs[i] != null) {
                c.set("logprobs", logprobs[i]);
            } else {
                c.putNull("logprobs");
            }
            c.put("finish_reason", finish[i]);
            if (request.returnTokenIds) {
                c.set("token_ids", tokenIds[i]);
            }
        }
        if (request.returnTokenIds) {
            ArrayNode prompt = out.putArray("prompt_token_ids");
            request.prepared.run().getPromptTokenIdsList().forEach(prompt::add);
        }
        out.set("usage", usage(usage));
        response.putHeader("content-type", "application/json").end(write(out));
        span.end(200, null);
    }

    private void failed(GenerationError error) {
        if (gone()) {
            span.end(499, null);
            return;
        }
        int status = switch (error.kind()) {
            case INVALID_ARGUMENT -> 400;
            case RESOURCE_EXHAUSTED -> 429;
            case UNAVAILABLE -> 503;
        };
        ApiException e = switch (error.kind()) {
            case INVALID_ARGUMENT -> ApiException.invalid(paramOf(error.message()), error.message());
            case RESOURCE_EXHAUSTED -> new ApiException(429, "rate_limit_error", null, "rate_limit_exceeded",
                    error.message());
            case UNAVAILABLE -> new ApiException(503, "server_error", null, "service_unavailable", error.message());
        };
        if (started) {
            // Mid-stream: the status is already 200; an error event, and no [DONE].
            response.end("data: " + write(OpenAiServer.errorBody(e)) + "\n\n");
        } else {
            OpenAiServer.sendError(response, e);
        }
        span.end(status, error.message());
    }

    /** The attention replica's refusals read "FIELD must ...": that field, or null. */
    static String paramOf(String message) {
        if (message == null) {
            return null;
        }
        Matcher m = Pattern.compile("^([a-z_]+) must ").matcher(message);
        return m.find() ? m.group(1) : null;
    }

    private void startStream() {
        if (started) {
            return;
        }
        started = true;
        response.setStatusCode(200).setChunked(true)
                .putHeader("content-type", "text/event-stream; charset=utf-8")
                .putHeader("cache-control", "no-cache");
        if (request.chat) {
            // Each completion opens with the assistant's role, as OpenAI's streams do.
            for (int i = 0; i < text.length; i++) {
                ObjectNode choice = OpenAiRequest.object().put("index", i);
                choice.putObject("delta").put("role", "assistant").put("content", "");
                choice.putNull("logprobs");
                choice.putNull("finish_reason");
                send(chunk(choice));
            }
        } else if (request.echo != null) {
            for (int i = 0; i < text.length; i++) {
                ObjectNode choice = OpenAiRequest.object().put("index", i).put("text", request.echo);
                choice.putNull("logprobs");
                choice.putNull("finish_reason");
                send(chunk(choice));
            }
        }
    }

    private ObjectNode header(String object) {
        ObjectNode o = OpenAiRequest.object();
        o.put("id", id).put("object", object).put("created", created).put("model", model);
        return o;
    }

    private ObjectNode chunk(ObjectNode choice) {
        ObjectNode c = header(request.chat ? "chat.completion.chunk" : "text_completion");
        c.putArray("choices").add(choice);
        if (request.includeUsage) {
            c.putNull("usage");
        }
        return c;
    }

    private static ObjectNode usage(Usage u) {
        return OpenAiRequest.object().put("prompt_tokens", u.getPromptTokens())
                .put("completion_tokens", u.getCompletionTokens())
                .put("total_tokens", u.getPromptTokens() + u.getCompletionTokens());
    }

    private void send(ObjectNode event) {
        response.write("data: " + write(event) + "\n\n");
    }

    static String write(ObjectNode node) {
        try {
            return OpenAiRequest.json().writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
