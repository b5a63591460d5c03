package io.moecluster.router.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.router.GenerationParams;
import io.moecluster.router.InvalidRequestException;
import io.moecluster.router.PreparedRequest;
import io.moecluster.router.RequestValidator;
import io.moecluster.router.chat.ChatTemplate;
import io.moecluster.router.chat.ChatTemplateException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An OpenAI {@code /v1/chat/completions} or {@code /v1/completions} request body, checked and turned
 * into a {@link PreparedRequest}: the chat template renders the messages, the tokenizer encodes the
 * prompt, and {@link RequestValidator} applies the defaults and limits every API shares. Each bad
 * or unsupported parameter is an {@link ApiException} naming it.
 *
 * <p>Parameters: OpenAI's ({@code max_tokens}, {@code max_completion_tokens}, {@code temperature},
 * {@code top_p}, {@code n}, {@code stop}, {@code seed}, {@code presence_penalty},
 * {@code frequency_penalty}, {@code logprobs}, {@code top_logprobs}, {@code stream},
 * {@code stream_options.include_usage}, {@code user} (ignored), {@code echo}, {@code best_of} = n)
 * and vLLM's extensions ({@code top_k}, {@code min_p}, {@code repetition_penalty},
 * {@code ignore_eos}, {@code stop_token_ids}, {@code add_generation_prompt},
 * {@code chat_template_kwargs}, {@code return_token_ids}). Unknown parameters are ignored, as vLLM does.
 */
final class OpenAiRequest {
    /** Completions' max_tokens when neither the request nor generation_config.json sets it (OpenAI's and vLLM's). */
    static final int COMPLETIONS_DEFAULT_MAX_TOKENS = 16;
    private static final ObjectMapper JSON = new ObjectMapper();

    final boolean chat;
    final PreparedRequest prepared;
    final boolean stream;
    final boolean includeUsage;
    final boolean logprobs;
    /** Completions with echo: the prompt's text, which goes before each completion. */
    final String echo;
    /** vLLM's {@code return_token_ids}: the prompt's and each completion's token ids in the response. */
    final boolean returnTokenIds;

    private OpenAiRequest(boolean chat, PreparedRequest prepared, boolean stream, boolean includeUsage,
                          boolean logprobs, String echo, boolean returnTokenIds) {
        this.chat = chat;
        this.prepared = prepared;
        this.stream = stream;
        this.includeUsage = includeUsage;
        this.logprobs = logprobs;
        this.echo = echo;
        this.returnTokenIds = returnTokenIds;
    }

    static JsonNode parseBody(byte[] body) throws ApiException {
        if (body == null || body.length == 0) {
            throw ApiException.invalid(null, "the request body is empty; send a JSON object");
        }
        try {
            JsonNode root = JSON.readTree(body);
            if (root == null || !root.isObject()) {
                throw ApiException.invalid(null, "the request body must be a JSON object");
            }
            return root;
        } catch (IOException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getMessage());
        }
    }

    /** {@code model}, when the request names one, must be the served model's name. */
    static void checkModel(JsonNode body, String servedModel) throws ApiException {
        JsonNode model = body.get("model");
        if (model != null && !model.isNull()) {
            if (!model.isTextual()) {
                throw ApiException.invalid("model", "model must be a string");
            }
            if (!model.asText().isEmpty() && !model.asText().equals(servedModel)) {
                throw new ApiException(404, "invalid_request_error", "model", "model_not_found",
                        "The model `" + model.asText() + "` does not exist; this server serves `" + servedModel + "`");
            }
        }
    }

    static OpenAiRequest chat(JsonNode body, RequestValidator validator, TextTokenizer tokenizer, ChatTemplate template)
            throws ApiException {
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty array of {role, content}");
        }
        List<Map<String, Object>> conversation = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            conversation.add(message(messages.get(i), "messages[" + i + "]"));
        }
        if (nonEmpty(body, "tools")) {
            throw ApiException.unsupported("tools", "tools (function calling)");
        }
        JsonNode format = body.get("response_format");
        if (format != null && !format.isNull() && !format.path("type").asText("text").equals("text")) {
            throw ApiException.unsupported("response_format", "response_format " + format.path("type").asText());
        }
        Map<String, Object> variables = new HashMap<>();
        JsonNode kwargs = body.get("chat_template_kwargs");
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) {
                throw ApiException.invalid("chat_template_kwargs", "chat_template_kwargs must be an object");
            }
            variables.putAll(JSON.convertValue(kwargs, Map.class));
        }
        boolean addGenerationPrompt = bool(body, "add_generation_prompt", true);
        String text;
        try {
            text = template.render(conversation, addGenerationPrompt, variables);
        } catch (ChatTemplateException e) {
            if (e.templateBroken()) {
                throw new ApiException(500, "server_error", null, null, e.getMessage());
            }
            throw ApiException.invalid("messages", e.getMessage());
        }
        checkTextSize(validator, text, "messages");
        // The template writes the special tokens it wants (BOS among them), as vLLM has it.
        int[] prompt = tokenizer.encode(text, false);
        if (prompt.length == 0) {
            throw ApiException.invalid("messages", "the chat template rendered an empty prompt");
        }
        String maxName = present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        GenerationParams p = common(body, maxName);
        boolean logprobs = bool(body, "logprobs", false);
        p.logprobs(logprobs).topLogprobs(integer(body, "top_logprobs"));
        RequestValidator.FieldNames names = names(maxName, "top_logprobs");
        return new OpenAiRequest(true, prepare(validator, prompt, p, names), stream(body), includeUsage(body),
                logprobs, null, bool(body, "return_token_ids", false));
    }

    /** Text longer than the validator's limit is refused (400) before the tokenizer sees it. */
    private static void checkTextSize(RequestValidator validator, String text, String param) throws ApiException {
        try {
            validator.checkTextSize(text, param);
        } catch (InvalidRequestException e) {
            throw ApiException.invalid(param, e.getMessage());
        }
    }

    static OpenAiRequest completion(JsonNode body, RequestValidator validator, TextTokenizer tokenizer)
            throws ApiException {
        JsonNode prompt = body.get("prompt");
        int[] ids;
        String promptText;
        if (prompt != null && prompt.isArray() && prompt.size() == 1 && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            prompt = prompt.get(0); // one prompt in a batch of one
        }
        if (prompt == null || prompt.isNull()) {
            throw ApiException.invalid("prompt", "prompt is required: a string or an array of token ids");
        } else if (prompt.isTextual()) {
            if (prompt.asText().isEmpty()) {
                throw ApiException.invalid("prompt", "prompt is empty");
            }
            promptText = prompt.asText();
            checkTextSize(validator, promptText, "prompt");
            ids = tokenizer.encode(promptText, true);
        } else if (prompt.isArray() && (prompt.isEmpty() || prompt.get(0).isIntegralNumber())) {
            List<Integer> list = new ArrayList<>();
            for (int i = 0; i < prompt.size(); i++) {
                JsonNode id = prompt.get(i);
                if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                    throw ApiException.invalid("prompt", "prompt[" + i + "] must be a token id, got " + id);
                }
                list.add(id.asInt());
            }
            try {
                ids = validator.tokenIds(list, "prompt");
            } catch (InvalidRequestException e) {
                throw ApiException.invalid(e.param(), e.getMessage());
            }
            promptText = null;
        } else if (prompt.isArray()) {
            throw ApiException.unsupported("prompt", "more than one prompt per request");
        } else {
            throw ApiException.invalid("prompt", "prompt must be a string or an array of token ids");
        }
        if (present(body, "suffix")) {
            throw ApiException.unsupported("suffix", "suffix");
        }
        GenerationParams p = common(body, "max_tokens");
        if (!present(body, "max_tokens") && validator.defaults().maxNewTokens() == null) {
            p.maxTokens(COMPLETIONS_DEFAULT_MAX_TOKENS);
        }
        Integer logprobs = integer(body, "logprobs");
        if (logprobs != null) {
            p.logprobs(true).topLogprobs(logprobs);
        }
        Integer bestOf = integer(body, "best_of");
        Integer n = integer(body, "n");
        if (bestOf != null && !bestOf.equals(n == null ? 1 : n)) {
            throw ApiException.unsupported("best_of", "best_of other than n");
        }
        boolean echo = bool(body, "echo", false);
        if (echo && logprobs != null) {
            throw ApiException.unsupported("echo", "echo with logprobs (the prompt's log-probabilities)");
        }
        String echoText = null;
        if (echo) {
            echoText = promptText != null ? promptText : tokenizer.decode(ids, true);
        }
        return new OpenAiRequest(false, prepare(validator, ids, p, names("max_tokens", "logprobs")), stream(body),
                includeUsage(body), logprobs != null, echoText, bool(body, "return_token_ids", false));
    }

    private static PreparedRequest prepare(RequestValidator validator, int[] prompt, GenerationParams p,
                                           RequestValidator.FieldNames names) throws ApiException {
        try {
            return validator.prepare(null, prompt, p, names, 1.0);
        } catch (InvalidRequestException e) {
            throw ApiException.invalid(e.param(), e.getMessage());
        }
    }

    /** The validator asks with the gRPC field names; these are OpenAI's. */
    private static RequestValidator.FieldNames names(String maxTokens, String topLogprobs) {
        return field -> switch (field) {
            case "max_tokens" -> maxTokens;
            case "stop_sequences" -> "stop";
            case "top_logprobs" -> topLogprobs;
            default -> field;
        };
    }

    /** The sampling parameters both endpoints share. */
    private static GenerationParams common(JsonNode body, String maxTokensName) throws ApiException {
        GenerationParams p = new GenerationParams()
                .temperature(number(body, "temperature"))
                .topP(number(body, "top_p"))
                .minP(number(body, "min_p"))
                .presencePenalty(number(body, "presence_penalty"))
                .frequencyPenalty(number(body, "frequency_penalty"))
                .repetitionPenalty(number(body, "repetition_penalty"))
                .maxTokens(integer(body, maxTokensName))
                .n(integer(body, "n"))
                .ignoreEos(bool(body, "ignore_eos", false))
                .stop(stop(body))
                .stopTokenIds(integers(body, "stop_token_ids"));
        Integer topK = integer(body, "top_k");
        p.topK(topK != null && topK == -1 ? Integer.valueOf(0) : topK); // vLLM: -1 = off
        JsonNode seed = body.get("seed");
        if (seed == null || seed.isNull()) {
            p.seed(ThreadLocalRandom.current().nextLong());
        } else if (seed.isIntegralNumber() && seed.canConvertToLong()) {
            p.seed(seed.asLong());
        } else {
            throw ApiException.invalid("seed", "seed must be an integer, got " + seed);
        }
        if (nonEmpty(body, "logit_bias")) {
            throw ApiException.unsupported("logit_bias", "logit_bias");
        }
        return p;
    }

    /** A message as the chat template sees it: role, content (text parts joined), and any other fields as given. */
    private static Map<String, Object> message(JsonNode m, String where) throws ApiException {
        if (m == null || !m.isObject()) {
            throw ApiException.invalid(where, where + " must be an object with role and content");
        }
        JsonNode role = m.get("role");
        if (role == null || !role.isTextual() || role.asText().isEmpty()) {
            throw ApiException.invalid(where + ".role", where + ".role must be a string (system, user, assistant, ...)");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> out = JSON.convertValue(m, LinkedHashMap.class);
        JsonNode content = m.get("content");
        if (content == null || content.isNull()) {
            out.put("content", null);
        } else if (content.isTextual()) {
            out.put("content", content.asText());
        } else if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (int j = 0; j < content.size(); j++) {
                JsonNode part = content.get(j);
                String type = part.path("type").asText("");
                if (!type.equals("text")) {
                    throw ApiException.unsupported(where + ".content[" + j + "].type", "content of type '" + type + "'");
                }
                if (!text.isEmpty()) {
                    text.append('\n');
                }
                text.append(part.path("text").asText(""));
            }
            out.put("content", text.toString());
        } else {
            throw ApiException.invalid(where + ".content", where + ".content must be a string or an array of text parts");
        }
        return out;
    }

    private static boolean stream(JsonNode body) throws ApiException {
        boolean stream = bool(body, "stream", false);
        JsonNode options = body.get("stream_options");
        if (!stream && options != null && !options.isNull()) {
            throw ApiException.invalid("stream_options", "stream_options is only allowed when stream is true");
        }
        return stream;
    }

    private static boolean includeUsage(JsonNode body) throws ApiException {
        JsonNode options = body.get("stream_options");
        if (options == null || options.isNull()) {
            return false;
        }
        if (!options.isObject()) {
            throw ApiException.invalid("stream_options", "stream_options must be an object");
        }
        return bool(options, "include_usage", false, "stream_options.include_usage");
    }

    private static List<String> stop(JsonNode body) throws ApiException {
        JsonNode stop = body.get("stop");
        List<String> out = new ArrayList<>();
        if (stop == null || stop.isNull()) {
            return out;
        }
        if (stop.isTextual()) {
            out.add(stop.asText());
            return out;
        }
        if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) {
                    throw ApiException.invalid("stop", "stop must be a string or an array of strings");
                }
                out.add(s.asText());
            }
            return out;
        }
        throw ApiException.invalid("stop", "stop must be a string or an array of strings");
    }

    static boolean present(JsonNode body, String key) {
        JsonNode n = body.get(key);
        return n != null && !n.isNull();
    }

    private static boolean nonEmpty(JsonNode body, String key) {
        JsonNode n = body.get(key);
        return n != null && !n.isNull() && !(n.isContainerNode() && n.isEmpty());
    }

    private static Double number(JsonNode body, String key) throws ApiException {
        JsonNode n = body.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isNumber()) {
            throw ApiException.invalid(key, key + " must be a number, got " + n);
        }
        return n.doubleValue();
    }

    private static Integer integer(JsonNode body, String key) throws ApiException {
        JsonNode n = body.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw ApiException.invalid(key, key + " must be an integer, got " + n);
        }
        return n.intValue();
    }

    private static List<Integer> integers(JsonNode body, String key) throws ApiException {
        JsonNode n = body.get(key);
        List<Integer> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (!n.isArray()) {
            throw ApiException.invalid(key, key + " must be an array of integers");
        }
        for (JsonNode v : n) {
            if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                throw ApiException.invalid(key, key + " must be an array of integers, got " + v);
            }
            out.add(v.intValue());
        }
        return out;
    }

    private static boolean bool(JsonNode body, String key, boolean fallback) throws ApiException {
        return bool(body, key, fallback, key);
    }

    private static boolean bool(JsonNode body, String key, boolean fallback, String name) throws ApiException {
        JsonNode n = body.get(key);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isBoolean()) {
            throw ApiException.invalid(name, name + " must be true or false, got " + n);
        }
        return n.booleanValue();
    }

    static ObjectNode object() {
        return JSON.createObjectNode();
    }

    static ObjectMapper json() {
        return JSON;
    }
}
