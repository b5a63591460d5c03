package io.moecluster.core.sampling;

/**
 * One sequence's repetition, frequency and presence penalties, as vLLM and transformers define
 * them. Before each sample, for every token that occurred so far:
 *
 * <ul>
 *   <li>repetition (over the prompt and the generated tokens): a positive logit is divided by
 *       {@code repetitionPenalty}, any other multiplied by it;</li>
 *   <li>then frequency and presence (over the generated tokens only): {@code frequencyPenalty x
 *       count + presencePenalty x (count > 0)} is subtracted.</li>
 * </ul>
 *
 * <p>State is primitive arrays sized once at admission (per-token counts over the vocabulary and
 * the list of distinct tokens seen), so {@link #accept} and {@link #apply} allocate nothing and
 * {@link #apply} visits only the tokens that occurred, not the whole vocabulary. One per sequence;
 * not thread-safe.
 */
public final class Penalties {
    private final float presence;
    private final float frequency;
    private final float repetition;
    /** Times each token was generated. */
    private final int[] counts;
    /** Bit per token: in the prompt or generated. */
    private final long[] seen;
    /** The distinct tokens of the prompt and the output, in first-seen order. */
    private final int[] distinct;
    private int distinctCount;

    /**
     * @param prompt the sequence's prompt (repetition penalty covers it)
     * @param maxTokens the most tokens the sequence generates (bounds the distinct-token list)
     */
    public Penalties(SamplingParams params, int vocabSize, int[] prompt, int maxTokens) {
        this.presence = (float) params.presencePenalty();
        this.frequency = (float) params.frequencyPenalty();
        this.repetition = (float) params.repetitionPenalty();
        this.counts = new int[vocabSize];
        this.seen = new long[(vocabSize + 63) >>> 6];
        this.distinct = new int[(int) Math.min(vocabSize, (long) prompt.length + maxTokens)];
        for (int id : prompt) {
            if (id >= 0 && id < vocabSize) {
                markSeen(id);
            }
        }
    }

    /** Counts a generated token. */
    public void accept(int token) {
        counts[token]++;
        markSeen(token);
    }

    private void markSeen(int id) {
        long bit = 1L << id;
        int word = id >>> 6;
        if ((seen[word] & bit) == 0) {
            seen[word] |= bit;
            distinct[distinctCount++] = id;
        }
    }

    /** Applies the penalties to {@code logits} in place. */
    public void apply(float[] logits) {
        for (int i = 0; i < distinctCount; i++) {
            int id = distinct[i];
            float l = logits[id];
            if (repetition != 1f) {
                l = l > 0 ? l / repetition : l * repetition;
            }
            int c = counts[id];
            if (c > 0) {
                l -= frequency * c + presence;
            }
            logits[id] = l;
        }
    }

    /** Times {@code token} was generated so far. */
    public int count(int token) {
        return counts[token];
    }
}
