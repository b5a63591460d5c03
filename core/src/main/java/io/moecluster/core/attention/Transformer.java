package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.LayerWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The attention side of the model over one {@link StepBatch}: embeddings, per layer RMSNorm, the
 * attention of the model's kind ({@link AttentionKind}: grouped-query, or multi-head latent, each
 * with its projections, RoPE and KV cache layout) and residual, then the feed-forward block through
 * {@link FeedForward}; finally the last norm and the LM head for the tokens that asked for logits.
 *
 * <p>All scratch is allocated here once for {@code maxBatchTokens}; a step allocates nothing.
 * Tokens of different sequences share the step: each attends only to its own cache.
 */
public final class Transformer implements AutoCloseable {
    private final ModelConfig config;
    private final FeedForward feedForward;
    private final int maxBatchTokens;
    private final int maxPositions;

    private final WeightMatrix embeddings;
    private final WeightMatrix lmHead;
    private final MemorySegment finalNorm;
    private final AttentionKind attention;
    private final LayerWeights[] layers;
    private final long attentionBytes;

    private final Arena arena = Arena.ofShared();
    private final DenseMatMul matmul;
    private final MemorySegment x;
    private final MemorySegment xn;
    private final MemorySegment proj;
    private final MemorySegment logitInput;
    /** The two micro-batches of a ping-pong step: the first uses {@link #x}, {@link #xn}, {@link #proj}. */
    private final MicroBatch first;
    private final MicroBatch second;
    private int microBatches = 1;
    private volatile long pingPongSteps;

    /** One micro-batch: its tokens and the rows of hidden state, normalised input and output it owns. */
    private record MicroBatch(StepBatch batch, MemorySegment x, MemorySegment xn, MemorySegment proj) {
    }

    /**
     * @param backend where the projections and the LM head compute
     * @param pool the threads attention over the KV cache runs on
     */
    public Transformer(ModelConfig config, WeightLoader loader, FeedForward feedForward, ComputeBackend backend,
                       WorkerPool pool, int maxBatchTokens, int maxPositions) {
        this.config = config;
        this.feedForward = feedForward;
        this.maxBatchTokens = maxBatchTokens;
        this.maxPositions = maxPositions;
        this.embeddings = loader.embeddings();
        this.lmHead = loader.lmHead();
        this.finalNorm = loader.finalNorm();
        this.attention = AttentionKind.of(config, loader, backend, pool, maxBatchTokens, maxPositions);
        this.layers = new LayerWeights[config.numLayers()];
        long bytes = 0;
        for (int l = 0; l < layers.length; l++) {
            layers[l] = attention.weights(l);
            bytes += layers[l].byteSize();
        }
        this.attentionBytes = bytes;

        int hidden = config.hiddenSize();
        this.matmul = backend.newMatMul();
        this.x = rows(hidden);
        this.xn = rows(hidden);
        this.proj = rows(hidden);
        this.logitInput = rows(hidden);
        this.first = new MicroBatch(new StepBatch(maxBatchTokens), x, xn, proj);
        this.second = new MicroBatch(new StepBatch(maxBatchTokens), rows(hidden), rows(hidden), rows(hidden));
    }

    private MemorySegment rows(int width) {
        return arena.allocate((long) maxBatchTokens * width * 4, 64);
    }

    public ModelConfig config() {
        return config;
    }

    public int maxBatchTokens() {
        return maxBatchTokens;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** Bytes of attention-side weights one token reads, LM head included (one embedding row is negligible). */
    public long activeBytesPerToken() {
        return attentionBytes + lmHead.byteSize();
    }

    /** The attention of every layer: its kind, weights and cache layout. */
    public AttentionKind attention() {
        return attention;
    }

    /** Bytes of KV cache one token takes, all layers, in this model's attention kind. */
    public long kvBytesPerToken() {
        return 4L * attention.cacheFloatsPerToken() * config.numLayers();
    }

    /** Bytes one token would take in a cache of every head's keys and values, all layers. */
    public long uncompressedKvBytesPerToken() {
        return 4L * attention.uncompressedCacheFloatsPerToken() * config.numLayers();
    }

    /** A KV cache sized for {@code capacity} positions of this model, in its attention kind's layout. */
    public KvCache newKvCache(int capacity) {
        if (capacity > maxPositions) {
            throw new IllegalArgumentException("sequence needs " + capacity + " positions; this engine allows "
                    + maxPositions + " (max-seq-len)");
        }
        return attention.newCache(config.numLayers(), capacity);
    }

    /**
     * Micro-batches per step: 1 runs each layer over the whole step; 2 splits a step of two or
     * more sequences in two halves that alternate between attention here and a feed-forward that
     * runs elsewhere ({@link FeedForward#overlaps()}: the router-service, or the expert services an
     * embedded router sends to), so that each side computes while the other one waits (a ping-pong
     * pipeline). Every token is computed the same way in both, so the numbers do not change. Set
     * before the first step, on any thread that hands the engine to its driver.
     */
    public void microBatches(int n) {
        if (n < 1 || n > FeedForward.MAX_IN_FLIGHT) {
            throw new IllegalArgumentException("--micro-batches must be 1 or " + FeedForward.MAX_IN_FLIGHT + ", got " + n);
        }
        this.microBatches = n;
    }

    public int microBatches() {
        return microBatches;
    }

    /** Steps run as two micro-batches so far. */
    public long pingPongSteps() {
        return pingPongSteps;
    }

    /**
     * Runs one step. {@code logits} receives {@code [batch.logitRows(), vocab]} f32, one row per
     * token that asked for logits, in the order they were added.
     */
    public void forward(StepBatch batch, MemorySegment logits) {
        int n = batch.size();
        if (n == 0) {
            return;
        }
        if (n > maxBatchTokens) {
            throw new IllegalArgumentException(n + " tokens exceed max-batch-tokens " + maxBatchTokens);
        }
        for (int t = 0; t < n; t++) {
            int token = batch.token(t);
            if (token < 0 || token >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + token + " outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        if (logits.byteSize() < (long) batch.logitRows() * config.vocabSize() * 4) {
            throw new IllegalArgumentException("logits buffer holds " + logits.byteSize() / 4 + " floats, need "
                    + (long) batch.logitRows() * config.vocabSize());
        }
        int split = microBatches > 1 && feedForward.overlaps() ? splitPoint(batch) : 0;
        if (split == 0) {
            embed(batch, 0, n, x);
            for (int l = 0; l < layers.length; l++) {
                attentionHalf(l, batch, n, x, xn, proj);
                feedForward.forward(l, xn, n, proj);
                Kernels.add(proj, 0, x, 0, n * config.hiddenSize());
            }
        } else {
            forwardPingPong(batch, split);
        }
        int hidden = config.hiddenSize();
        float eps = (float) config.rmsNormEps();
        int rows = 0;
        for (int t = 0; t < n; t++) {
            if (batch.wantsLogits(t)) {
                boolean inFirst = split == 0 || t < split; // a whole step is all in the first's rows
                MemorySegment from = inFirst ? x : second.x;
                long offset = (long) (inFirst ? t : t - split) * hidden;
                Kernels.rmsNorm(from, offset, finalNorm, logitInput, (long) batch.logitRow(t) * hidden, hidden, eps);
                rows++;
            }
        }
        matmul.apply(lmHead, logitInput, logits, rows);
    }

    /**
     * The ping-pong pipeline over two micro-batches, tokens {@code [0, split)} (rows of {@link #x})
     * and {@code [split, n)} (rows of {@link #second}): per layer, attention of the first, its
     * feed-forward sent; attention of the second, its feed-forward sent; then the first's answer
     * is awaited before its next layer, while the second's is still computing elsewhere. One
     * thread does all of it in a fixed order, so results do not depend on timing.
     */
    private void forwardPingPong(StepBatch batch, int split) {
        int n = batch.size();
        pingPongSteps = pingPongSteps + 1; // only the stepping thread writes it
        copyTokens(batch, 0, split, first.batch);
        copyTokens(batch, split, n, second.batch);
        embed(batch, 0, split, x);
        embed(batch, split, n, second.x);
        int hidden = config.hiddenSize();
        try {
            for (int l = 0; l < layers.length; l++) {
                for (int slot = 0; slot < 2; slot++) {
                    MicroBatch m = slot == 0 ? first : second;
                    int tokens = m.batch.size();
                    if (l > 0) {
                        feedForward.await(slot);
                        Kernels.add(m.proj, 0, m.x, 0, tokens * hidden);
                    }
                    attentionHalf(l, m.batch, tokens, m.x, m.xn, m.proj);
                    feedForward.submit(slot, l, m.xn, tokens, m.proj);
                }
            }
            for (int slot = 0; slot < 2; slot++) {
                MicroBatch m = slot == 0 ? first : second;
                feedForward.await(slot);
                Kernels.add(m.proj, 0, m.x, 0, m.batch.size() * hidden);
            }
        } finally {
            // A failure in either micro-batch fails the step as a whole; the other one's answer, if it
            // still comes, is for a request the feed-forward no longer waits for (its next submit on
            // that slot replaces it), so the next step starts clean.
            first.batch.clear();
            second.batch.clear();
        }
    }

    /**
     * Where to split a step in two micro-batches: the boundary between sequences closest to half of
     * its tokens, so that no sequence is on both sides (a sequence's tokens are contiguous, as the
     * scheduler adds them); 0 (do not split) for a step of one sequence.
     */
    static int splitPoint(StepBatch batch) {
        int n = batch.size();
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (batch.cache(i) != batch.cache(i - 1) && (best == 0 || Math.abs(2 * i - n) < Math.abs(2 * best - n))) {
                best = i;
            }
        }
        if (best == 0) {
            return 0;
        }
        for (int i = best; i < n; i++) {
            if (i > best && batch.cache(i) == batch.cache(i - 1)) {
                continue;
            }
            for (int j = 0; j < best; j++) {
                if (batch.cache(j) == batch.cache(i)) {
                    return 0; // a sequence whose tokens are not contiguous: keep the step whole
                }
            }
        }
        return best;
    }

    private static void copyTokens(StepBatch from, int start, int end, StepBatch to) {
        to.clear();
        for (int t = start; t < end; t++) {
            to.add(from.token(t), from.position(t), from.cache(t), false, from.isDecode(t));
        }
    }

    /** The embeddings of tokens {@code [start, end)} of {@code batch} into rows {@code 0..} of {@code into}. */
    private void embed(StepBatch batch, int start, int end, MemorySegment into) {
        long hidden = config.hiddenSize();
        for (int t = start; t < end; t++) {
            embeddings.copyRowTo(batch.token(t), into, (t - start) * hidden);
        }
    }

    /**
     * Layer {@code l} up to its feed-forward: input norm, attention, residual, and the
     * post-attention norm of {@code n} tokens of {@code batch} into {@code xn}.
     */
    private void attentionHalf(int l, StepBatch batch, int n, MemorySegment x, MemorySegment xn, MemorySegment proj) {
        int hidden = config.hiddenSize();
        float eps = (float) config.rmsNormEps();
        LayerWeights w = layers[l];
        for (int t = 0; t < n; t++) {
            Kernels.rmsNorm(x, (long) t * hidden, w.inputNorm(), xn, (long) t * hidden, hidden, eps);
        }
        attention.forward(l, batch, xn, proj);
        Kernels.add(proj, 0, x, 0, n * hidden);
        for (int t = 0; t < n; t++) {
            Kernels.rmsNorm(x, (long) t * hidden, w.postAttentionNorm(), xn, (long) t * hidden, hidden, eps);
        }
    }

    @Override
    public void close() {
        attention.close();
        arena.close();
    }
}
