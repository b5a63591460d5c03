package io.moecluster.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The sampling defaults a model ships in {@code generation_config.json}: what a request that
 * leaves a value unset gets. Each value is null when the file does not set it (or there is no file).
 *
 * <p>{@code "do_sample": false} means greedy decoding in transformers whatever the temperature,
 * so it makes the default temperature 0; otherwise {@code temperature} is taken as it is.
 *
 * @param temperature 0 for greedy
 * @param maxNewTokens {@code max_new_tokens}
 */
public record GenerationDefaults(Double temperature, Integer topK, Double topP, Double minP,
                                 Double repetitionPenalty, Integer maxNewTokens) {
    public static final String FILE = "generation_config.json";
    public static final GenerationDefaults NONE = new GenerationDefaults(null, null, null, null, null, null);

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads {@code modelDir/generation_config.json}; {@link #NONE} without one. */
    public static GenerationDefaults load(Path modelDir) {
        Path file = modelDir.resolve(FILE);
        try {
            return parse(JSON.readTree(Files.readString(file)), file.toString());
        } catch (NoSuchFileException e) {
            return NONE;
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot parse JSON: " + e.getMessage(), e);
        }
    }

    public static GenerationDefaults parse(JsonNode root, String source) {
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(source + ": not a JSON object");
        }
        Double temperature = number(root, "temperature", source);
        JsonNode doSample = root.get("do_sample");
        if (doSample != null && doSample.isBoolean() && !doSample.booleanValue()) {
            temperature = 0.0;
        }
        Double topK = number(root, "top_k", source);
        Double maxNew = number(root, "max_new_tokens", source);
        return new GenerationDefaults(temperature, topK == null ? null : topK.intValue(), number(root, "top_p", source),
                number(root, "min_p", source), number(root, "repetition_penalty", source),
                maxNew == null ? null : maxNew.intValue());
    }

    private static Double number(JsonNode root, String key, String source) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isNumber()) {
            throw new ModelFormatException(source + ": " + key + " must be a number, got " + n);
        }
        return n.doubleValue();
    }
}
