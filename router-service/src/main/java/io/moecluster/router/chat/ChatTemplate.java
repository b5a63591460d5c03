package io.moecluster.router.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jinjava.javax.el.CompositeELResolver;

/**
 * A model's chat template: the Jinja template in {@code tokenizer_config.json}'s
 * {@code chat_template} (or {@code chat_template.jinja} beside it, as newer transformers save it,
 * or a file given with {@code --chat-template}) that turns a conversation into the prompt text the
 * model was trained on. Rendered as transformers' {@code apply_chat_template} does: with
 * {@code messages}, {@code add_generation_prompt}, the tokenizer's special tokens
 * ({@code bos_token}, {@code eos_token}, {@code unk_token}, {@code pad_token},
 * {@code additional_special_tokens}, ...), {@code tools} when given, and Jinja2's
 * {@code trim_blocks}/{@code lstrip_blocks}, loop controls, {@code raise_exception},
 * {@code strftime_now} and {@code tojson}. The engine is Jinjava, made to follow Jinja2's Python
 * semantics where templates depend on them ({@link JinjaCompat}).
 *
 * <p>Thread-safe: each render has its own interpreter.
 */
public final class ChatTemplate {
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    public static final String TEMPLATE_FILE = "chat_template.jinja";
    private static final List<String> SPECIAL_TOKEN_KEYS = List.of("bos_token", "eos_token", "unk_token", "sep_token",
            "pad_token", "cls_token", "mask_token");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Jinjava JINJAVA = newJinjava();

    private final String source;
    private final String template;
    private final Map<String, Object> specialTokens;
    private final String origin;

    private ChatTemplate(String source, Map<String, Object> specialTokens, String origin) {
        this.source = source;
        this.template = source == null ? null : JinjaCompat.rewrite(JinjaCompat.dropTrailingNewline(source));
        this.specialTokens = Collections.unmodifiableMap(new LinkedHashMap<>(specialTokens));
        this.origin = origin;
    }

    private static Jinjava newJinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new JinjaCompat.PythonStrings());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        Jinjava j = new Jinjava(JinjavaConfig.newBuilder()
                // Never render the messages' own text as a template: "{{ ... }}" in a user's message is
                // text, as in Jinja2 (Jinjava would otherwise interpret it: template injection).
                .withNestedInterpretationEnabled(false)
                .withTrimBlocks(true)
                .withLstripBlocks(false) // JinjaCompat.rewrite does it as Jinja2 does
                .withElResolver(resolver)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withParseWhitespaceControlStrictly(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseSnakeCasePropertyNaming(true)
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .build());
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now", JinjaCompat.class,
                "strftimeNow", String.class));
        j.getGlobalContext().registerFilter(new JinjaCompat.ToJson());
        return j;
    }

    /** What a template's {@code raise_exception(message)} throws; the render reports its message. */
    static final class Raised extends RuntimeException {
        Raised(String message) {
            super(message, null, false, false);
        }
    }

    /** Called by templates as {@code raise_exception(message)}. */
    public static String raiseException(String message) {
        throw new Raised(message);
    }

    /**
     * The chat template of {@code modelDir}: {@code override} when not null, else
     * {@code chat_template.jinja}, else {@code tokenizer_config.json}'s {@code chat_template} (its
     * "default" entry when it lists named templates). A model without one gets a template whose
     * every render fails saying so; the special tokens come from {@code tokenizer_config.json} either way.
     *
     * @throws ModelFormatException if a file exists but cannot be read or parsed
     */
    public static ChatTemplate load(Path modelDir, Path override) {
        Path configFile = modelDir.resolve(TOKENIZER_CONFIG);
        JsonNode config;
        try {
            config = JSON.readTree(Files.readString(configFile, StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            config = JSON.createObjectNode();
        } catch (IOException e) {
            throw new ModelFormatException(configFile + ": cannot parse JSON: " + e.getMessage(), e);
        }
        Map<String, Object> special = specialTokens(config);
        try {
            if (override != null) {
                return new ChatTemplate(Files.readString(override, StandardCharsets.UTF_8), special, override.toString());
            }
            Path file = modelDir.resolve(TEMPLATE_FILE);
            if (Files.isRegularFile(file)) {
                return new ChatTemplate(Files.readString(file, StandardCharsets.UTF_8), special, file.toString());
            }
        } catch (IOException e) {
            throw new ModelFormatException("cannot read chat template " + (override != null ? override
                    : modelDir.resolve(TEMPLATE_FILE)) + ": " + e.getMessage(), e);
        }
        return new ChatTemplate(templateOf(config.get("chat_template")), special, configFile + " chat_template");
    }

    /** A template from text, with these special-token variables (tests, tools). */
    public static ChatTemplate of(String template, Map<String, Object> specialTokens) {
        return new ChatTemplate(template, specialTokens, "template");
    }

    private static String templateOf(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isArray()) {
            String first = null;
            for (JsonNode entry : node) {
                String name = entry.path("name").asText();
                String text = entry.path("template").asText(null);
                if (name.equals("default")) {
                    return text;
                }
                first = first == null ? text : first;
            }
            return first;
        }
        return null;
    }

    private static Map<String, Object> specialTokens(JsonNode config) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (String key : SPECIAL_TOKEN_KEYS) {
            String token = tokenText(config.get(key));
            if (token != null) {
                out.put(key, token);
            }
        }
        List<Object> additional = new ArrayList<>();
        for (JsonNode t : config.path("additional_special_tokens")) {
            String token = tokenText(t);
            if (token != null) {
                additional.add(token);
            }
        }
        out.put("additional_special_tokens", additional);
        return out;
    }

    /** A token is its text, or an AddedToken object {"content": ...}. */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isTextual()) {
            return n.asText();
        }
        JsonNode content = n.get("content");
        return content != null && content.isTextual() ? content.asText() : null;
    }

    public boolean isPresent() {
        return template != null;
    }

    /** Where the template came from, for logs and errors. */
    public String origin() {
        return origin;
    }

    /** The template text as given. */
    public String source() {
        return source;
    }

    public Map<String, Object> specialTokens() {
        return specialTokens;
    }

    /** The special token's text, e.g. {@code bos_token}, or null. */
    public String specialToken(String key) {
        Object v = specialTokens.get(key);
        return v instanceof String s ? s : null;
    }

    /**
     * Renders a conversation.
     *
     * @param messages each a map with {@code role} and {@code content} (and whatever else the
     *     template reads, e.g. {@code tool_calls}); JSON-like values: maps, lists, strings, numbers,
     *     booleans, null
     * @param addGenerationPrompt end with the start of an assistant turn
     * @param variables more template variables ({@code tools}, a request's {@code chat_template_kwargs});
     *     they may not replace {@code messages} or {@code add_generation_prompt}
     * @throws ChatTemplateException with the template's own message when it raises, or the parser's
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt,
                         Map<String, ?> variables) throws ChatTemplateException {
        if (template == null) {
            throw new ChatTemplateException("the model has no chat template (" + origin + " is not set); give the router"
                    + " one with --chat-template FILE, or use /v1/completions", false);
        }
        Map<String, Object> context = new HashMap<>(specialTokens);
        context.putAll(variables);
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = JINJAVA.renderForResult(template, context);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() != TemplateError.ErrorType.FATAL) {
                continue;
            }
            Raised raised = raisedBy(e.getException());
            if (raised != null) {
                throw new ChatTemplateException(raised.getMessage(), false);
            }
            throw new ChatTemplateException("chat template (" + origin + ") failed at line " + e.getLineno() + ": "
                    + e.getMessage(), true);
        }
        return result.getOutput();
    }

    private static Raised raisedBy(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof Raised r) {
                return r;
            }
        }
        return null;
    }
}
