package io.moecluster.core.sampling;

import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits: greedy, or temperature, then top-k, then top-p
 * (nucleus), then min-p, then a draw from the renormalised distribution; the order of Hugging
 * Face's {@code generate}. Penalties are applied to the row before ({@link Penalties}).
 *
 * <p>This runs once per generated token, so all scratch space is sized to the vocabulary once
 * here and {@link #sample} allocates nothing. One sampler per sequence: it owns the sequence's
 * random number generator and is not thread-safe.
 */
public final class Sampler {
    private final int vocabSize;
    private final SamplingParams params;
    private final SplittableRandom random;
    /** Candidate token ids, best first once sorted. */
    private final int[] candidates;
    /** Unnormalised probability of candidates[j]; doubles so that 150k small terms sum accurately. */
    private final double[] weights;

    public Sampler(int vocabSize, SamplingParams params) {
        if (vocabSize < 1) {
            throw new IllegalArgumentException("vocabSize must be >= 1, got " + vocabSize);
        }
        this.vocabSize = vocabSize;
        this.params = params;
        this.random = new SplittableRandom(params.seed());
        boolean needsScratch = !params.isGreedy();
        this.candidates = needsScratch ? new int[vocabSize] : new int[0];
        this.weights = needsScratch ? new double[vocabSize] : new double[0];
    }

    public int vocabSize() {
        return vocabSize;
    }

    public SamplingParams params() {
        return params;
    }

    /**
     * The next token id, in {@code [0, vocabSize)}.
     *
     * @param logits at least {@code vocabSize} values; any beyond are ignored (padded vocab rows)
     * @throws IllegalArgumentException if {@code logits} is too short, holds a NaN, or is all -infinity
     */
    public int sample(float[] logits) {
        if (logits.length < vocabSize) {
            throw new IllegalArgumentException("logits has " + logits.length + " values, need vocabSize "
                    + vocabSize);
        }
        int best = argmax(logits);
        float max = logits[best];
        // An infinite logit is a certainty; the softmax below would compute inf - inf = NaN.
        if (params.isGreedy() || max == Float.POSITIVE_INFINITY) {
            return best;
        }

        int n;
        int topK = params.topK();
        if (topK > 0 && topK < vocabSize) {
            n = LogitOrder.selectTopK(logits, vocabSize, topK, candidates);
        } else {
            n = vocabSize;
            for (int i = 0; i < n; i++) {
                candidates[i] = i;
            }
        }
        boolean nucleus = params.topP() < 1.0;
        if (nucleus) {
            // Probability is monotonic in the logit, so ordering by logit orders by probability.
            LogitOrder.sortDescending(logits, candidates, n);
        }

        // Softmax numerator with the max subtracted: exp never overflows and the best token weighs 1.
        double invTemperature = 1.0 / params.temperature();
        double total = 0;
        for (int j = 0; j < n; j++) {
            double w = Math.exp((logits[candidates[j]] - (double) max) * invTemperature);
            weights[j] = w;
            total += w;
        }

        if (nucleus) {
            double threshold = params.topP() * total;
            double cumulative = 0;
            int kept = 0;
            // The best token is always kept, however small topP is.
            while (kept < n) {
                cumulative += weights[kept++];
                if (cumulative >= threshold) {
                    break;
                }
            }
            n = kept;
            total = cumulative;
        }

        double minP = params.minP();
        if (minP > 0) {
            // The best token weighs exactly 1, so "probability >= minP x the best one's" is "weight >= minP",
            // whatever top-k and top-p kept (they never drop the best token). Dropped tokens weigh 0.
            total = 0;
            for (int j = 0; j < n; j++) {
                if (weights[j] < minP) {
                    weights[j] = 0;
                }
                total += weights[j];
            }
        }

        double r = random.nextDouble() * total;
        double cumulative = 0;
        for (int j = 0; j < n; j++) {
            cumulative += weights[j];
            if (r < cumulative) {
                return candidates[j];
            }
        }
        // Rounding can leave r a hair above the last partial sum; the last kept token is the one it
        // fell on. Skip zero-weight tails so that an underflowed token is never returned.
        for (int j = n - 1; j > 0; j--) {
            if (weights[j] > 0) {
                return candidates[j];
            }
        }
        return candidates[0];
    }

    /** Index of the largest of the first vocabSize logits, the lowest index on ties. */
    private int argmax(float[] logits) {
        int best = -1;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocabSize; i++) {
            float x = logits[i];
            if (x > max) {
                max = x;
                best = i;
            } else if (Float.isNaN(x)) {
                throw new IllegalArgumentException("logit for token " + i + " is NaN");
            }
        }
        if (best < 0) {
            throw new IllegalArgumentException("all " + vocabSize + " logits are -infinity; nothing can be sampled");
        }
        return best;
    }
}
