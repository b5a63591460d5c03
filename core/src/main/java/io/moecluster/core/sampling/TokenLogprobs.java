package io.moecluster.core.sampling;

/**
 * The log-probabilities of one sampled position, under the raw model distribution (the
 * log-softmax of the engine's logits, before penalties, temperature, top-k/top-p and min-p): the
 * sampled token's and, when asked, the most likely tokens' (best first, ties to the lower id).
 *
 * <p>One reusable instance per sequence, refilled at every step: a {@link
 * io.moecluster.core.engine.TokenSink} reads it during its callback and must copy what it keeps.
 */
public final class TokenLogprobs {
    private final int[] topIds;
    private final float[] topLogprobs;
    private int topCount;
    private int token = -1;
    private float logprob;
    private double logSumExp;

    /** @param top how many alternatives to list, 0 to {@link SamplingParams#MAX_TOP_LOGPROBS} */
    public TokenLogprobs(int top) {
        if (top < 0 || top > SamplingParams.MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException("top logprobs must be in [0, " + SamplingParams.MAX_TOP_LOGPROBS
                    + "], got " + top);
        }
        this.topIds = new int[top];
        this.topLogprobs = new float[top];
    }

    /**
     * Reads one raw logits row: its log-normaliser and its most likely tokens. Call before anything
     * changes the row.
     */
    public void prepare(float[] logits, int vocabSize) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocabSize; i++) {
            if (logits[i] > max) {
                max = logits[i];
            }
        }
        double sum = 0;
        for (int i = 0; i < vocabSize; i++) {
            sum += Math.exp((double) logits[i] - max);
        }
        logSumExp = max + Math.log(sum);
        topCount = topIds.length == 0 ? 0 : LogitOrder.selectTopK(logits, vocabSize, topIds.length, topIds);
        LogitOrder.sortDescending(logits, topIds, topCount);
        for (int j = 0; j < topCount; j++) {
            topLogprobs[j] = (float) (logits[topIds[j]] - logSumExp);
        }
        token = -1;
    }

    /** Records the token sampled at this position and its raw logit. */
    public void sampled(int tokenId, float rawLogit) {
        this.token = tokenId;
        this.logprob = (float) (rawLogit - logSumExp);
    }

    /** The sampled token. */
    public int token() {
        return token;
    }

    /** log p(token) under the raw model distribution. */
    public float logprob() {
        return logprob;
    }

    /** How many alternatives are listed (as asked, or the vocabulary size if smaller). */
    public int topCount() {
        return topCount;
    }

    /** The {@code rank}-th most likely token (0 = most likely). */
    public int topId(int rank) {
        return topIds[rank];
    }

    public float topLogprob(int rank) {
        return topLogprobs[rank];
    }
}
