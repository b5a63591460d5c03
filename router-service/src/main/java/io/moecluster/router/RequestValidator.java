package io.moecluster.router;

import io.moecluster.core.model.GenerationDefaults;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.proto.internal.v1.RunRequest;
import java.util.List;
import java.util.UUID;

/**
 * Turns a tokenized prompt and a request's {@link GenerationParams} into an attention
 * {@link RunRequest}, for every API: fills unset values from the model's
 * {@code generation_config.json}, then from the API's defaults, and refuses bad values naming the
 * field as the client's API spells it ({@link FieldNames}).
 */
public final class RequestValidator {
    /** max_tokens when neither the request nor generation_config.json says. */
    public static final int DEFAULT_MAX_TOKENS = 256;
    /** The largest |presence_penalty| and |frequency_penalty| (OpenAI's and vLLM's range). */
    public static final double MAX_PENALTY = 2;

    /** An API's name for each field; the validator asks with the gRPC sampling field's name (e.g. "top_k", "stop_sequences"). */
    @FunctionalInterface
    public interface FieldNames {
        String of(String field);
    }

    /** The public gRPC API's: fields of {@code sampling}. */
    public static final FieldNames GRPC = field -> "sampling." + field;

    private final ModelConfig config;
    private final int maxSequenceLength;
    private final GenerationDefaults defaults;

    public RequestValidator(ModelConfig config, int maxSequenceLength, GenerationDefaults defaults) {
        this.config = config;
        this.maxSequenceLength = maxSequenceLength;
        this.defaults = defaults;
    }

    public ModelConfig config() {
        return config;
    }

    public int maxSequenceLength() {
        return maxSequenceLength;
    }

    /** Characters of input text read per position of max-seq-len; no token of a real vocabulary is longer. */
    public static final int MAX_CHARS_PER_POSITION = 32;
    /** The text limit never drops below this (64 Ki characters), whatever max-seq-len. */
    public static final int MIN_MAX_INPUT_CHARS = 64 * 1024;

    /**
     * The most characters of text one request may bring to be tokenized (a prompt, a Tokenize
     * call, a rendered chat): {@value #MAX_CHARS_PER_POSITION} per position of max-seq-len, at
     * least {@value #MIN_MAX_INPUT_CHARS}. A longer text could not fit max-seq-len anyway (a token
     * covers at least one character); refusing it before the tokenizer runs bounds what one
     * request costs the router's memory and time.
     */
    public int maxInputChars() {
        return Math.max(MIN_MAX_INPUT_CHARS, MAX_CHARS_PER_POSITION * maxSequenceLength);
    }

    /** Refuses {@code text} longer than {@link #maxInputChars()}, naming {@code field}; before it is tokenized. */
    public String checkTextSize(String text, String field) throws InvalidRequestException {
        if (text.length() > maxInputChars()) {
            throw new InvalidRequestException(field, field + " has " + text.length() + " characters; at most "
                    + maxInputChars() + " are read (" + MAX_CHARS_PER_POSITION + " per position of max-seq-len "
                    + maxSequenceLength + ")");
        }
        return text;
    }

    public GenerationDefaults defaults() {
        return defaults;
    }

    /** Checks that every id is in the model's vocabulary; {@code field} names the list, e.g. "token_ids.ids". */
    public int[] tokenIds(List<Integer> ids, String field) throws InvalidRequestException {
        if (ids.isEmpty()) {
            throw new InvalidRequestException(field, field + " is empty");
        }
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            Integer id = ids.get(i);
            if (id == null || id < 0 || id >= config.vocabSize()) {
                throw new InvalidRequestException(field, field + "[" + i + "] = " + id
                        + " is outside the vocabulary [0, " + config.vocabSize() + ")");
            }
            out[i] = id;
        }
        return out;
    }

    /**
     * @param requestId the client's, or null/empty for a new one
     * @param fallbackTemperature the API's temperature when neither the request nor
     *     generation_config.json sets one (gRPC: 0, greedy; OpenAI: 1)
     */
    public PreparedRequest prepare(String requestId, int[] prompt, GenerationParams p, FieldNames names,
                                   double fallbackTemperature) throws InvalidRequestException {
        double temperature = pick(p.temperature, defaults.temperature(), fallbackTemperature);
        if (!Double.isFinite(temperature) || temperature < 0) {
            throw invalid(names, "temperature", p.temperature, "must be a finite number >= 0 (0 = greedy), got "
                    + temperature);
        }
        int topK = p.topK != null ? p.topK : defaults.topK() != null ? defaults.topK() : 0;
        if (topK < 0) {
            throw invalid(names, "top_k", p.topK, "must be >= 0 (0 = off), got " + topK);
        }
        double topP = pick(p.topP, defaults.topP(), 1);
        if (!(topP >= 0 && topP <= 1)) {
            throw invalid(names, "top_p", p.topP, "must be in [0, 1] (0 or 1 = off), got " + topP);
        }
        double minP = pick(p.minP, defaults.minP(), 0);
        if (!(minP >= 0 && minP <= 1)) {
            throw invalid(names, "min_p", p.minP, "must be in [0, 1] (0 = off), got " + minP);
        }
        double presence = p.presencePenalty == null ? 0 : p.presencePenalty;
        if (!(Math.abs(presence) <= MAX_PENALTY)) {
            throw invalid(names, "presence_penalty", p.presencePenalty, "must be in [-2, 2] (0 = off), got " + presence);
        }
        double frequency = p.frequencyPenalty == null ? 0 : p.frequencyPenalty;
        if (!(Math.abs(frequency) <= MAX_PENALTY)) {
            throw invalid(names, "frequency_penalty", p.frequencyPenalty, "must be in [-2, 2] (0 = off), got "
                    + frequency);
        }
        double repetition = pick(p.repetitionPenalty, defaults.repetitionPenalty(), 1);
        if (!(repetition > 0) || !Double.isFinite(repetition)) {
            throw invalid(names, "repetition_penalty", p.repetitionPenalty, "must be a finite number > 0 (1 = off), got "
                    + repetition);
        }
        if (p.maxTokens != null && p.maxTokens < 1) {
            throw new InvalidRequestException(names.of("max_tokens"), names.of("max_tokens") + " must be >= 1, got "
                    + p.maxTokens);
        }
        int room = maxSequenceLength - prompt.length;
        if (room < 1) {
            throw new InvalidRequestException(null, "input is " + prompt.length + " tokens, which leaves no room to"
                    + " generate within max-seq-len " + maxSequenceLength);
        }
        int requested = p.maxTokens != null ? p.maxTokens
                : defaults.maxNewTokens() != null && defaults.maxNewTokens() > 0 ? defaults.maxNewTokens()
                : DEFAULT_MAX_TOKENS;
        int maxTokens = Math.min(requested, room);
        for (int i = 0; i < p.stopTokenIds.size(); i++) {
            Integer id = p.stopTokenIds.get(i);
            if (id == null || id < 0 || id >= config.vocabSize()) {
                String f = names.of("stop_token_ids");
                throw new InvalidRequestException(f, f + "[" + i + "] = " + id + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        for (int i = 0; i < p.stop.size(); i++) {
            if (p.stop.get(i) == null || p.stop.get(i).isEmpty()) {
                String f = names.of("stop_sequences");
                throw new InvalidRequestException(f, f + "[" + i + "] is empty");
            }
        }
        int topLogprobs = p.topLogprobs == null ? 0 : p.topLogprobs;
        if (topLogprobs < 0 || topLogprobs > SamplingParams.MAX_TOP_LOGPROBS) {
            String f = names.of("top_logprobs");
            throw new InvalidRequestException(f, f + " must be in [0, " + SamplingParams.MAX_TOP_LOGPROBS + "], got "
                    + topLogprobs);
        }
        if (topLogprobs > 0 && !p.logprobs) {
            String f = names.of("top_logprobs");
            throw new InvalidRequestException(f, f + " needs " + names.of("logprobs") + " to be true");
        }
        int n = p.n == null ? 1 : p.n;
        if (n < 1) {
            throw new InvalidRequestException(names.of("n"), names.of("n") + " must be >= 1, got " + n);
        }
        String id = requestId == null || requestId.isEmpty() ? UUID.randomUUID().toString() : requestId;
        RunRequest.Builder run = RunRequest.newBuilder()
                .setRequestId(id)
                .setTemperature((float) temperature)
                .setTopK(topK)
                .setTopP((float) topP)
                .setMinP((float) minP)
                .setSeed(p.seed == null ? 0 : p.seed)
                .setMaxTokens(maxTokens)
                .addAllStopTokenIds(p.stopTokenIds)
                .setIgnoreEos(p.ignoreEos)
                .setPresencePenalty((float) presence)
                .setFrequencyPenalty((float) frequency)
                .setRepetitionPenalty((float) repetition)
                .setLogprobs(p.logprobs)
                .setTopLogprobs(topLogprobs)
                .setN(n);
        for (int t : prompt) {
            run.addPromptTokenIds(t);
        }
        return new PreparedRequest(id, run.build(), p.stop);
    }

    private static double pick(Double requested, Double fromConfig, double fallback) {
        return requested != null ? requested : fromConfig != null ? fromConfig : fallback;
    }

    private static InvalidRequestException invalid(FieldNames names, String field, Object requested, String message) {
        String name = names.of(field);
        return new InvalidRequestException(name, name + " " + message
                + (requested == null ? " (the default from " + GenerationDefaults.FILE + ")" : ""));
    }
}
