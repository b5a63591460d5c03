package io.moecluster.core.engine;

import io.moecluster.core.attention.KvCache;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.Penalties;
import io.moecluster.core.sampling.Sampler;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.sampling.TokenLogprobs;
import java.util.Arrays;

/**
 * One request's state in a {@link BatchGenerator}: its prompt, how much of it is in the KV cache,
 * the tokens generated so far and how it ended. Buffers (penalty counts and log-probability
 * scratch too, when its params ask for them) are sized at submission.
 *
 * <p>Sequences submitted together ({@link BatchGenerator#submitGroup}, a request's {@code n}
 * completions) share one prefill: the first of the group (its <em>leader</em>) prefills, and the
 * others, its <em>siblings</em>, join the batch with a copy of its KV cache once the prompt is in it.
 */
public final class Sequence {
    private final long id;
    private final int[] prompt;
    private final SamplingParams params;
    private final TokenSink sink;
    private final Sampler sampler;
    private final float[] logitsRow;
    private final int[] generated;
    private final long submittedNanos;
    private final int index;
    /** Null unless the params have penalties. */
    private final Penalties penalties;
    /** Null unless the params ask for log-probabilities. */
    private final TokenLogprobs logprobs;
    /** A leader's siblings, until they are forked off its prefill; empty otherwise. */
    private Sequence[] siblings = NO_SIBLINGS;
    /** Batch slots the generator holds for this leader's siblings until they fork. */
    int reservedSlots;
    private KvCache cache;
    private int cached;
    private int generatedCount;
    private FinishReason finishReason;
    private long firstTokenNanos;
    private long finishedNanos;

    private static final Sequence[] NO_SIBLINGS = new Sequence[0];

    Sequence(long id, int index, int[] prompt, SamplingParams params, int vocabSize, TokenSink sink) {
        this.id = id;
        this.index = index;
        this.prompt = prompt;
        this.params = params;
        this.sink = sink;
        this.sampler = new Sampler(vocabSize, params);
        this.logitsRow = new float[vocabSize];
        this.generated = new int[params.maxTokens()];
        this.submittedNanos = System.nanoTime();
        this.penalties = params.hasPenalties() ? new Penalties(params, vocabSize, prompt, params.maxTokens()) : null;
        this.logprobs = params.wantsLogprobs() ? new TokenLogprobs(params.logprobs()) : null;
    }

    /** Position within its group: 0 for the leader (and for a sequence submitted alone). */
    public int index() {
        return index;
    }

    void siblings(Sequence[] siblings) {
        this.siblings = siblings;
    }

    /** The leader's siblings not yet forked off its prefill (finished ones included); empty once forked. */
    Sequence[] siblings() {
        return siblings;
    }

    void forked() {
        siblings = NO_SIBLINGS;
    }

    Penalties penalties() {
        return penalties;
    }

    TokenLogprobs logprobs() {
        return logprobs;
    }

    public long id() {
        return id;
    }

    public int promptLength() {
        return prompt.length;
    }

    public int generatedCount() {
        return generatedCount;
    }

    public int[] generatedTokens() {
        return Arrays.copyOf(generated, generatedCount);
    }

    public boolean isFinished() {
        return finishReason != null;
    }

    public FinishReason finishReason() {
        return finishReason;
    }

    /** Nanoseconds from submission to the first generated token, or -1 before it. */
    public long timeToFirstTokenNanos() {
        return firstTokenNanos == 0 ? -1 : firstTokenNanos - submittedNanos;
    }

    public long elapsedNanos() {
        return (finishedNanos == 0 ? System.nanoTime() : finishedNanos) - submittedNanos;
    }

    /** Positions the sequence may use: the whole prompt plus every token it may feed back. */
    int kvCapacity() {
        return prompt.length + params.maxTokens();
    }

    boolean isAdmitted() {
        return cache != null;
    }

    void admit(KvCache kvCache) {
        this.cache = kvCache;
    }

    KvCache cache() {
        return cache;
    }

    int promptRemaining() {
        return prompt.length - Math.min(cached, prompt.length);
    }

    int cached() {
        return cached;
    }

    int promptToken(int i) {
        return prompt[i];
    }

    int lastGenerated() {
        return generated[generatedCount - 1];
    }

    void advance(int tokens) {
        cached += tokens;
    }

    SamplingParams params() {
        return params;
    }

    Sampler sampler() {
        return sampler;
    }

    float[] logitsRow() {
        return logitsRow;
    }

    TokenSink sink() {
        return sink;
    }

    void accept(int token) {
        if (generatedCount == 0) {
            firstTokenNanos = System.nanoTime();
        }
        generated[generatedCount++] = token;
        if (penalties != null) {
            penalties.accept(token);
        }
    }

    void finish(FinishReason reason) {
        this.finishReason = reason;
        this.finishedNanos = System.nanoTime();
        if (cache != null) {
            cache.close();
            cache = null;
        }
    }
}
