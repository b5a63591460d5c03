package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.AttentionWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The attention side of the model over one {@link StepBatch}: embeddings, per layer RMSNorm,
 * q/k/v projections with RoPE, the KV cache, grouped-query attention, the output projection and
 * residual, then the feed-forward block through {@link FeedForward}; finally the last norm and
 * the LM head for the tokens that asked for logits.
 *
 * <p>All scratch is allocated here once for {@code maxBatchTokens}; a step allocates nothing.
 * Tokens of different sequences share the step: each attends only to its own cache.
 */
public final class Transformer implements AutoCloseable {
    private final ModelConfig config;
    private final FeedForward feedForward;
    private final WorkerPool pool;
    private final int maxBatchTokens;
    private final int maxPositions;

    private final WeightMatrix embeddings;
    private final WeightMatrix lmHead;
    private final MemorySegment finalNorm;
    private final AttentionWeights[] layers;
    private final long attentionBytes;

    private final Arena arena = Arena.ofShared();
    private final RotaryEmbedding rope;
    private final DenseMatMul matmul;
    private final CausalAttention attention;
    private final MemorySegment x;
    private final MemorySegment xn;
    private final MemorySegment q;
    private final MemorySegment k;
    private final MemorySegment v;
    private final MemorySegment attnOut;
    private final MemorySegment proj;
    private final MemorySegment logitInput;

    /**
     * @param backend where the projections and the LM head compute
     * @param pool the threads attention over the KV cache runs on
     */
    public Transformer(ModelConfig config, WeightLoader loader, FeedForward feedForward, ComputeBackend backend,
                       WorkerPool pool, int maxBatchTokens, int maxPositions) {
        this.config = config;
        this.feedForward = feedForward;
        this.pool = pool;
        this.maxBatchTokens = maxBatchTokens;
        this.maxPositions = maxPositions;
        this.embeddings = loader.embeddings();
        this.lmHead = loader.lmHead();
        this.finalNorm = loader.finalNorm();
        this.layers = new AttentionWeights[config.numLayers()];
        long bytes = 0;
        for (int l = 0; l < layers.length; l++) {
            layers[l] = loader.attention(l);
            bytes += layers[l].byteSize();
        }
        this.attentionBytes = bytes;

        int hidden = config.hiddenSize();
        this.rope = new RotaryEmbedding(config.headDim(), config.ropeTheta(), maxPositions, arena);
        this.matmul = backend.newMatMul();
        this.attention = new CausalAttention(config, pool.threads(), maxPositions, arena);
        this.x = rows(hidden);
        this.xn = rows(hidden);
        this.q = rows(config.queryDim());
        this.k = rows(config.kvDim());
        this.v = rows(config.kvDim());
        this.attnOut = rows(config.queryDim());
        this.proj = rows(hidden);
        this.logitInput = rows(hidden);
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

    /** A KV cache sized for {@code capacity} positions of this model. */
    public KvCache newKvCache(int capacity) {
        if (capacity > maxPositions) {
            throw new IllegalArgumentException("sequence needs " + capacity + " positions; this engine allows "
                    + maxPositions + " (max-seq-len)");
        }
        return new KvCache(config.numLayers(), capacity, config.kvDim());
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
        int hidden = config.hiddenSize();
        for (int t = 0; t < n; t++) {
            int token = batch.token(t);
            if (token < 0 || token >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + token + " outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
            embeddings.copyRowTo(token, x, (long) t * hidden);
        }
        float eps = (float) config.rmsNormEps();
        for (int l = 0; l < layers.length; l++) {
            AttentionWeights w = layers[l];
            for (int t = 0; t < n; t++) {
                Kernels.rmsNorm(x, (long) t * hidden, w.inputNorm(), xn, (long) t * hidden, hidden, eps);
            }
            project(w.q(), w.qBias(), q, n);
            project(w.k(), w.kBias(), k, n);
            project(w.v(), w.vBias(), v, n);
            int kvDim = config.kvDim();
            for (int t = 0; t < n; t++) {
                int pos = batch.position(t);
                rope.apply(q, (long) t * config.queryDim(), config.numHeads(), pos);
                rope.apply(k, (long) t * kvDim, config.numKvHeads(), pos);
                KvCache cache = batch.cache(t);
                long at = cache.index(l, pos);
                MemorySegment.copy(k, (long) t * kvDim * 4, cache.keys(), at * 4, (long) kvDim * 4);
                MemorySegment.copy(v, (long) t * kvDim * 4, cache.values(), at * 4, (long) kvDim * 4);
            }
            attention.run(pool, batch, l, q, attnOut);
            matmul.apply(w.o(), attnOut, proj, n);
            Kernels.add(proj, 0, x, 0, n * hidden);
            for (int t = 0; t < n; t++) {
                Kernels.rmsNorm(x, (long) t * hidden, w.postAttentionNorm(), xn, (long) t * hidden, hidden, eps);
            }
            feedForward.forward(l, xn, n, proj);
            Kernels.add(proj, 0, x, 0, n * hidden);
        }
        int rows = 0;
        for (int t = 0; t < n; t++) {
            if (batch.wantsLogits(t)) {
                Kernels.rmsNorm(x, (long) t * hidden, finalNorm, logitInput, (long) batch.logitRow(t) * hidden,
                        hidden, eps);
                rows++;
            }
        }
        if (logits.byteSize() < (long) rows * config.vocabSize() * 4) {
            throw new IllegalArgumentException("logits buffer holds " + logits.byteSize() / 4 + " floats, need "
                    + (long) rows * config.vocabSize());
        }
        matmul.apply(lmHead, logitInput, logits, rows);
    }

    private void project(WeightMatrix w, MemorySegment bias, MemorySegment out, int n) {
        matmul.apply(w, xn, out, n);
        if (bias != null) {
            for (int t = 0; t < n; t++) {
                Kernels.add(bias, 0, out, (long) t * w.rows(), w.rows());
            }
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
