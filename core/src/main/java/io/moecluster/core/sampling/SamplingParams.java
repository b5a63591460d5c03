package io.moecluster.core.sampling;

import io.moecluster.core.model.ModelConfig;
import java.util.Arrays;
import java.util.Objects;

/**
 * How to pick each next token, and when to stop.
 *
 * @param temperature 0 picks the most likely token (greedy); otherwise logits are divided by it
 * @param topK keep only the k most likely tokens; 0 keeps all
 * @param topP keep the smallest set of most likely tokens whose probability adds up to at least
 *     this (nucleus sampling); 1.0 keeps all
 * @param seed seeds the sampler's random numbers: same seed and same logits give the same tokens
 * @param maxTokens the most tokens to generate
 * @param stopTokenIds tokens that end generation besides the model's EOS ids (may be empty)
 * @param ignoreEos keep generating through the model's EOS ids (benchmarks; stop ids still stop)
 * @param minP keep only tokens whose probability is at least this times the most likely token's
 *     (after temperature); 0 keeps all
 * @param presencePenalty subtracted from the logit of every token generated so far (OpenAI's and
 *     vLLM's {@code presence_penalty}); 0 = off
 * @param frequencyPenalty subtracted from the logit of every token generated so far, times the
 *     number of times it was generated ({@code frequency_penalty}); 0 = off
 * @param repetitionPenalty the logit of every token of the prompt or generated so far is divided
 *     by this when positive and multiplied by it otherwise (transformers' and vLLM's
 *     {@code repetition_penalty}); 1 = off
 * @param logprobs -1: none; 0: the log-probability of each sampled token; k (at most
 *     {@value #MAX_TOP_LOGPROBS}): also the k most likely tokens and theirs. Always of the raw
 *     model distribution (log-softmax of the logits, before penalties and temperature)
 */
public record SamplingParams(
        double temperature, int topK, double topP, long seed, int maxTokens, int[] stopTokenIds, boolean ignoreEos,
        double minP, double presencePenalty, double frequencyPenalty, double repetitionPenalty, int logprobs) {

    /** The most alternatives a token's log-probabilities may list (OpenAI's limit). */
    public static final int MAX_TOP_LOGPROBS = 20;
    /** {@link #logprobs()} when none are wanted. */
    public static final int NO_LOGPROBS = -1;

    private static final int[] NONE = new int[0];

    public SamplingParams {
        if (!(temperature >= 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0 (0 = greedy), got "
                    + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1] (1 = off), got " + topP);
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1, got " + maxTokens);
        }
        stopTokenIds = stopTokenIds == null ? NONE : stopTokenIds.clone();
        for (int id : stopTokenIds) {
            if (id < 0) {
                throw new IllegalArgumentException("stopTokenIds must be token ids >= 0, got " + id);
            }
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("minP must be in [0, 1] (0 = off), got " + minP);
        }
        if (!Double.isFinite(presencePenalty)) {
            throw new IllegalArgumentException("presencePenalty must be a finite number (0 = off), got "
                    + presencePenalty);
        }
        if (!Double.isFinite(frequencyPenalty)) {
            throw new IllegalArgumentException("frequencyPenalty must be a finite number (0 = off), got "
                    + frequencyPenalty);
        }
        if (!(repetitionPenalty > 0) || !Double.isFinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetitionPenalty must be a finite number > 0 (1 = off), got "
                    + repetitionPenalty);
        }
        if (logprobs < NO_LOGPROBS || logprobs > MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException("logprobs must be in [-1, " + MAX_TOP_LOGPROBS
                    + "] (-1 = none, 0 = the sampled token's only), got " + logprobs);
        }
    }

    /** No min-p, penalties or log-probabilities. */
    public SamplingParams(double temperature, int topK, double topP, long seed, int maxTokens, int[] stopTokenIds,
                          boolean ignoreEos) {
        this(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, 0, 0, 0, 1, NO_LOGPROBS);
    }

    /** Stops at the model's EOS ids. */
    public SamplingParams(double temperature, int topK, double topP, long seed, int maxTokens, int[] stopTokenIds) {
        this(temperature, topK, topP, seed, maxTokens, stopTokenIds, false);
    }

    /** Most likely token at every step, no extra stop tokens. */
    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0, 0, 1.0, 0, maxTokens, NONE);
    }

    public SamplingParams withIgnoreEos(boolean ignore) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignore, minP,
                presencePenalty, frequencyPenalty, repetitionPenalty, logprobs);
    }

    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(temperature, topK, topP, newSeed, maxTokens, stopTokenIds, ignoreEos, minP,
                presencePenalty, frequencyPenalty, repetitionPenalty, logprobs);
    }

    public SamplingParams withMinP(double newMinP) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, newMinP,
                presencePenalty, frequencyPenalty, repetitionPenalty, logprobs);
    }

    /** These penalties instead (0, 0, 1 = none). */
    public SamplingParams withPenalties(double presence, double frequency, double repetition) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, minP,
                presence, frequency, repetition, logprobs);
    }

    /** @param topLogprobs -1 = none, 0 = the sampled token's only, k = also the k most likely */
    public SamplingParams withLogprobs(int topLogprobs) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, minP,
                presencePenalty, frequencyPenalty, repetitionPenalty, topLogprobs);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    /** Whether any penalty changes the logits (each needs the sequence's token counts). */
    public boolean hasPenalties() {
        return presencePenalty != 0 || frequencyPenalty != 0 || repetitionPenalty != 1;
    }

    public boolean wantsLogprobs() {
        return logprobs >= 0;
    }

    /** Whether generating {@code id} ends the sequence: one of the model's EOS ids or a stop id. */
    public boolean isStopToken(int id, ModelConfig config) {
        if (!ignoreEos && config.isEos(id)) {
            return true;
        }
        for (int stop : stopTokenIds) {
            if (stop == id) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int[] stopTokenIds() {
        return stopTokenIds.clone();
    }

    // Records compare arrays by reference; compare the ids instead.
    @Override
    public boolean equals(Object o) {
        return o instanceof SamplingParams p
                && Double.compare(temperature, p.temperature) == 0
                && topK == p.topK
                && Double.compare(topP, p.topP) == 0
                && seed == p.seed
                && maxTokens == p.maxTokens
                && ignoreEos == p.ignoreEos
                && Arrays.equals(stopTokenIds, p.stopTokenIds)
                && Double.compare(minP, p.minP) == 0
                && Double.compare(presencePenalty, p.presencePenalty) == 0
                && Double.compare(frequencyPenalty, p.frequencyPenalty) == 0
                && Double.compare(repetitionPenalty, p.repetitionPenalty) == 0
                && logprobs == p.logprobs;
    }

    @Override
    public int hashCode() {
        return 31 * Objects.hash(temperature, topK, topP, seed, maxTokens, ignoreEos, minP, presencePenalty,
                frequencyPenalty, repetitionPenalty, logprobs) + Arrays.hashCode(stopTokenIds);
    }

    @Override
    public String toString() {
        return "SamplingParams[temperature=" + temperature + ", topK=" + topK + ", topP=" + topP + ", seed=" + seed
                + ", maxTokens=" + maxTokens + ", stopTokenIds=" + Arrays.toString(stopTokenIds)
                + ", ignoreEos=" + ignoreEos + ", minP=" + minP + ", presencePenalty=" + presencePenalty
                + ", frequencyPenalty=" + frequencyPenalty + ", repetitionPenalty=" + repetitionPenalty
                + ", logprobs=" + logprobs + "]";
    }
}
