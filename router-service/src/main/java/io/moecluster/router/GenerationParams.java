package io.moecluster.router;

import java.util.ArrayList;
import java.util.List;

/**
 * The sampling settings of a request, whichever API it came through, before validation: null
 * means "not set by the client" (then {@code generation_config.json}, then the API's own default,
 * apply). Setters are fluent.
 */
public final class GenerationParams {
    Double temperature;
    Integer topK;
    Double topP;
    Double minP;
    Long seed;
    Integer maxTokens;
    final List<String> stop = new ArrayList<>();
    final List<Integer> stopTokenIds = new ArrayList<>();
    boolean ignoreEos;
    Double presencePenalty;
    Double frequencyPenalty;
    Double repetitionPenalty;
    boolean logprobs;
    Integer topLogprobs;
    Integer n;

    public GenerationParams temperature(Double v) {
        temperature = v;
        return this;
    }

    public GenerationParams topK(Integer v) {
        topK = v;
        return this;
    }

    public GenerationParams topP(Double v) {
        topP = v;
        return this;
    }

    public GenerationParams minP(Double v) {
        minP = v;
        return this;
    }

    public GenerationParams seed(Long v) {
        seed = v;
        return this;
    }

    public GenerationParams maxTokens(Integer v) {
        maxTokens = v;
        return this;
    }

    public GenerationParams stop(List<String> v) {
        stop.addAll(v);
        return this;
    }

    public GenerationParams stopTokenIds(List<Integer> v) {
        stopTokenIds.addAll(v);
        return this;
    }

    public GenerationParams ignoreEos(boolean v) {
        ignoreEos = v;
        return this;
    }

    public GenerationParams presencePenalty(Double v) {
        presencePenalty = v;
        return this;
    }

    public GenerationParams frequencyPenalty(Double v) {
        frequencyPenalty = v;
        return this;
    }

    public GenerationParams repetitionPenalty(Double v) {
        repetitionPenalty = v;
        return this;
    }

    public GenerationParams logprobs(boolean v) {
        logprobs = v;
        return this;
    }

    public GenerationParams topLogprobs(Integer v) {
        topLogprobs = v;
        return this;
    }

    public GenerationParams n(Integer v) {
        n = v;
        return this;
    }
}
