package io.moecluster.core.engine;

import io.moecluster.core.attention.StepBatch;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Continuous batching over an {@link Engine}: every {@link #step()} forms one token batch from
 * all running sequences (one decode token each) and fills what is left of the step's budget with
 * prompt chunks of sequences still prefilling; new sequences join between steps, finished ones
 * leave and free their KV cache.
 *
 * <p>Decode tokens go first so that running sequences keep their inter-token latency while long
 * prompts are admitted in chunks. Single-threaded: one caller submits and steps.
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
        Sequence s = new Sequence(nextId++, prompt, params, config.vocabSize(), sink);
        waiting.add(s);
        return s;
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
        return true;
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
        }
        running.clear();
        java.util.Arrays.fill(rowOwner, null);
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
        while (running.size() < maxRunning && !waiting.isEmpty()) {
            Sequence s = waiting.poll();
            s.admit(engine.transformer().newKvCache(s.kvCapacity()));
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
        for (Sequence s : running) {
            int remaining = s.promptRemaining();
            if (remaining == 0 || batch.remaining() == 0) {
                continue;
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
        int tokens = batch.size();
        if (tokens == 0) {
            return 0;
        }
        MemorySegment logits = engine.step(batch);
        int vocab = config.vocabSize();
        for (int row = 0; row < batch.logitRows(); row++) {
            Sequence s = rowOwner[row];
            rowOwner[row] = null;
            float[] scratch = s.logitsRow();
            MemorySegment.copy(logits, Kernels.F32, (long) row * vocab * 4, scratch, 0, vocab);
            int token = s.sampler().sample(scratch);
            if (s.params().isStopToken(token, config)) {
                s.finish(FinishReason.STOP);
                s.sink().onFinish(FinishReason.STOP);
                continue;
            }
            s.accept(token);
            s.sink().onToken(token);
            if (s.generatedCount() >= s.params().maxTokens()) {
                s.finish(FinishReason.LENGTH);
                s.sink().onFinish(FinishReason.LENGTH);
            }
        }
        running.removeIf(Sequence::isFinished);
        return tokens;
    }
}
