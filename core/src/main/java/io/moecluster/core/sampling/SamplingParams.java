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
 */
public record SamplingParams(
        double temperature, int topK, double topP, long seed, int maxTokens, int[] stopTokenIds, boolean ignoreEos) {

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
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignore);
    }

    public boolean isGreedy() {
        return temperature == 0;
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
                && Arrays.equals(stopTokenIds, p.stopTokenIds);
    }

    @Override
    public int hashCode() {
        return 31 * Objects.hash(temperature, topK, topP, seed, maxTokens, ignoreEos) + Arrays.hashCode(stopTokenIds);
    }

    @Override
    public String toString() {
        return "SamplingParams[temperature=" + temperature + ", topK=" + topK + ", topP=" + topP + ", seed=" + seed
                + ", maxTokens=" + maxTokens + ", stopTokenIds=" + Arrays.toString(stopTokenIds)
                + ", ignoreEos=" + ignoreEos + "]";
    }
}
