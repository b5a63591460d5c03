package io.moecluster.core.engine;

import io.moecluster.core.attention.StepBatch;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.Penalties;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.sampling.TokenLogprobs;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Continuous batching over an {@link Engine}: every {@link #step()} forms one token batch from
 * all running sequences (one decode token each) and fills what is left of the step's budget with
 * prompt chunks of sequences still prefilling; new sequences join between steps, finished ones
 * leave and free their KV cache.
 *
 * <p>The step's token budget ({@code --max-batch-tokens}) is spent in this order: one decode token
 * for every running sequence first, so running sequences keep their inter-token latency while long
 * prompts are admitted in chunks; then prompt chunks, the shortest remaining prompt first, so a
 * short request is not stuck behind a long prompt's prefill. A long prompt therefore slows every
 * other request by a bounded factor: each of their steps holds at most the budget's tokens, and a
 * short prompt (up to the budget minus the running sequences) is prefilled in the first step after
 * it is admitted. Single-threaded: one caller submits and steps.
 *
 * <p>A group of sequences with one prompt ({@link #submitGroup}: a request for n completions) is
 * prefilled once: its leader is admitted with slots held for the others, and in the step that
 * completes the prompt each sibling gets a copy of the leader's KV cache and samples its first
 * token from the same logits row, then all decode independently.
 */
public final class BatchGenerator {
    private final Engine engine;
    private final ModelConfig config;
    private final StepBatch batch;
    private final int maxRunning;
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    /** Sequence that owns each logits row of the current step; parallel to the batch's logit rows. */
    private final Sequence[] rowOwner;
    private long nextId = 1;
    /** Slots held for siblings of admitted leaders that have not forked yet. */
    private int reservedSlots;
    /** Scratch of {@link #step()}: the running sequences with prompt left, in the order they get budget. */
    private final List<Sequence> prefilling = new ArrayList<>();
    private static final Comparator<Sequence> SHORTEST_PROMPT_FIRST = Comparator.comparingInt(Sequence::promptRemaining);

    /** @param maxRunning most sequences holding a KV cache at once; the rest wait in order */
    public BatchGenerator(Engine engine, int maxRunning) {
        if (maxRunning < 1) {
            throw new IllegalArgumentException("max running sequences must be >= 1, got " + maxRunning);
        }
        this.engine = engine;
        this.config = engine.config();
        this.batch = new StepBatch(engine.transformer().maxBatchTokens());
        this.maxRunning = maxRunning;
        this.rowOwner = new Sequence[batch.capacity()];
    }

    /**
     * Queues a request. Fails at once, naming the limit, if the prompt is empty, holds an id
     * outside the vocabulary, or cannot fit the engine's max-seq-len with its max tokens.
     */
    public Sequence submit(int[] prompt, SamplingParams params, TokenSink sink) {
        return submitGroup(prompt, params, new TokenSink[] {sink})[0];
    }

    /**
     * Queues {@code sinks.length} sequences of one prompt that share its prefill (a request's n
     * completions): sequence i samples with seed {@code params.seed() + i}. Validated as
     * {@link #submit}; the group may not be larger than max running sequences.
     *
     * @return the sequences, the leader first; cancelling the leader before its prefill completes
     *     cancels the others too
     */
    public Sequence[] submitGroup(int[] prompt, SamplingParams params, TokenSink[] sinks) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt is empty");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("prompt token " + i + " = " + prompt[i]
                        + " is outside the vocabulary [0, " + config.vocabSize() + ")");
            }
        }
        int needed = prompt.length + params.maxTokens();
        int limit = engine.transformer().maxPositions();
        if (needed > limit) {
            throw new IllegalArgumentException("prompt (" + prompt.length + " tokens) + max_tokens ("
                    + params.maxTokens() + ") = " + needed + " exceeds max-seq-len " + limit);
        }
        if (sinks.length < 1 || sinks.length > maxRunning) {
            throw new IllegalArgumentException("n = " + sinks.length + " completions must be in [1, " + maxRunning
                    + "] (the most sequences running at once)");
        }
        int[] shared = prompt.clone();
        Sequence[] group = new Sequence[sinks.length];
        for (int i = 0; i < group.length; i++) {
            SamplingParams p = i == 0 ? params : params.withSeed(params.seed() + i);
            group[i] = new Sequence(nextId++, i, shared, p, config.vocabSize(), sinks[i]);
        }
        if (group.length > 1) {
            group[0].siblings(Arrays.copyOfRange(group, 1, group.length));
        }
        waiting.add(group[0]);
        return group;
    }

    public boolean isIdle() {
        return waiting.isEmpty() && running.isEmpty();
    }

    public int runningCount() {
        return running.size();
    }

    public int waitingCount() {
        return waiting.size();
    }

    /**
     * Ends {@code s} now, waiting or running, and frees its KV cache; its sink hears nothing more.
     * Call between steps (same thread as {@link #step()}). Returns false if it had already finished.
     */
    public boolean cancel(Sequence s) {
        if (s.isFinished()) {
            return false;
        }
        if (!waiting.remove(s)) {
            running.remove(s);
        }
        s.finish(FinishReason.CANCELLED);
        for (Sequence sibling : s.siblings()) {
            if (!sibling.isFinished()) {
                sibling.finish(FinishReason.CANCELLED);
            }
        }
        s.forked();
        releaseReservation(s);
        return true;
    }

    private void releaseReservation(Sequence leader) {
        reservedSlots -= leader.reservedSlots;
        leader.reservedSlots = 0;
    }

    /**
     * After a {@link #step()} threw, the running sequences' positions no longer match their KV
     * caches: ends every running sequence that has not finished (freeing its cache) and returns
     * them, so the caller can tell their owners why. Waiting sequences are kept.
     */
    public List<Sequence> abortRunning() {
        List<Sequence> aborted = new ArrayList<>();
        for (Sequence s : running) {
            if (!s.isFinished()) {
                s.finish(FinishReason.CANCELLED);
                aborted.add(s);
            }
            for (Sequence sibling : s.siblings()) {
                if (!sibling.isFinished()) {
                    sibling.finish(FinishReason.CANCELLED);
                    aborted.add(sibling);
                }
            }
            s.forked();
            s.reservedSlots = 0;
        }
        running.clear();
        reservedSlots = 0;
        Arrays.fill(rowOwner, null);
        return aborted;
    }

    /** Runs steps until every submitted sequence has finished. */
    public void runToCompletion() {
        while (!isIdle()) {
            step();
        }
    }

    /** One forward step; returns the number of tokens it processed (0 when idle). */
    public int step() {
        while (!waiting.isEmpty()) {
            Sequence s = waiting.peek();
            int siblings = 0;
            for (Sequence sibling : s.siblings()) {
                siblings += sibling.isFinished() ? 0 : 1;
            }
            if (running.size() + reservedSlots + 1 + siblings > maxRunning) {
                break; // in order: a group waits until it fits whole
            }
            waiting.poll();
            s.admit(engine.transformer().newKvCache(s.kvCapacity()));
            s.reservedSlots = siblings;
            reservedSlots += siblings;
            running.add(s);
        }
        batch.clear();
        for (Sequence s : running) {
            if (s.promptRemaining() == 0 && batch.remaining() > 0) {
                int row = batch.add(s.lastGenerated(), s.cached(), s.cache(), true, true);
                rowOwner[row] = s;
                s.advance(1); // the batch holds the position; the sequence's count moves on now
            }
        }
        // The rest of the budget goes to prompts, shortest remaining first: a short request that
        // arrives while a long prompt is being prefilled is prefilled in the next step and starts
        // decoding, instead of waiting until the long prompt is in (head-of-line blocking). The
        // long one takes what is left of every step, so it still finishes.
        prefilling.clear();
        for (Sequence s : running) {
            if (s.promptRemaining() > 0) {
                prefilling.add(s);
            }
        }
        prefilling.sort(SHORTEST_PROMPT_FIRST); // stable: equal ones in admission order
        for (Sequence s : prefilling) {
            int remaining = s.promptRemaining();
            if (batch.remaining() == 0) {
                break;
            }
            int chunk = Math.min(remaining, batch.remaining());
            int start = s.cached();
            for (int i = 0; i < chunk; i++) {
                boolean last = i == remaining - 1;
                int row = batch.add(s.promptToken(start + i), start + i, s.cache(), last);
                if (last) {
                    rowOwner[row] = s;
                }
            }
            s.advance(chunk);
        }
        prefilling.clear();
        int tokens = batch.size();
        if (tokens == 0) {
            return 0;
        }
        MemorySegment logits = engine.step(batch);
        for (int row = 0; row < batch.logitRows(); row++) {
            Sequence s = rowOwner[row];
            rowOwner[row] = null;
            Sequence[] siblings = s.siblings();
            if (siblings.length > 0) {
                fork(s, siblings);
            }
            sampleAndEmit(s, logits, row);
            for (Sequence sibling : siblings) {
                if (!sibling.isFinished() && sibling.isAdmitted()) {
                    sampleAndEmit(sibling, logits, row);
                }
            }
        }
        running.removeIf(Sequence::isFinished);
        return tokens;
    }

    /**
     * The leader's prompt is now in its KV cache (this step's last row of it is being sampled):
     * each live sibling gets a copy of those positions and joins the running batch.
     */
    private void fork(Sequence leader, Sequence[] siblings) {
        int positions = leader.promptLength();
        for (Sequence sibling : siblings) {
            if (sibling.isFinished()) {
                continue;
            }
            sibling.admit(engine.transformer().newKvCache(sibling.kvCapacity()));
            leader.cache().copyPrefixTo(sibling.cache(), positions);
            sibling.advance(positions);
            running.add(sibling);
        }
        leader.forked();
        releaseReservation(leader);
    }

    /**
     * Samples {@code s}'s next token from logits row {@code row}: log-probabilities of the raw row
     * first (when asked), then penalties, then the sampler; then stop or emit.
     */
    private void sampleAndEmit(Sequence s, MemorySegment logits, int row) {
        int vocab = config.vocabSize();
        long rowStart = (long) row * vocab;
        float[] scratch = s.logitsRow();
        MemorySegment.copy(logits, Kernels.F32, rowStart * 4, scratch, 0, vocab);
        TokenLogprobs logprobs = s.logprobs();
        if (logprobs != null) {
            logprobs.prepare(scratch, vocab);
        }
        Penalties penalties = s.penalties();
        if (penalties != null) {
            penalties.apply(scratch);
        }
        int token = s.sampler().sample(scratch);
        if (logprobs != null) {
            logprobs.sampled(token, logits.getAtIndex(Kernels.F32, rowStart + token));
        }
        if (s.params().isStopToken(token, config)) {
            s.finish(FinishReason.STOP);
            s.sink().onFinish(FinishReason.STOP);
            return;
        }
        s.accept(token);
        s.sink().onToken(token, logprobs);
        if (s.generatedCount() >= s.params().maxTokens()) {
            s.finish(FinishReason.LENGTH);
            s.sink().onFinish(FinishReason.LENGTH);
        }
    }
}
