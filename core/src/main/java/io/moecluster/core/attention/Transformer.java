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
            LayerWeights w = layers[l];
            for (int t = 0; t < n; t++) {
                Kernels.rmsNorm(x, (long) t * hidden, w.inputNorm(), xn, (long) t * hidden, hidden, eps);
            }
            attention.forward(l, batch, xn, proj);
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

    @Override
    public void close() {
        attention.close();
        arena.close();
    }
}
