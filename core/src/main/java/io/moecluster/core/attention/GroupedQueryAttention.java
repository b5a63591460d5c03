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
import java.util.Locale;

/**
 * Grouped-query attention as Mixtral and Qwen2-MoE have it: q, k and v projections (with biases
 * where the model has them), RoPE on whole heads, the keys and values cached as they are (plane
 * {@link #KEYS} and plane {@link #VALUES}, {@code kv_heads x head_dim} floats each), causal
 * attention of each query head against its KV group ({@link CausalAttention}), the output projection.
 */
public final class GroupedQueryAttention implements AttentionKind {
    /** The cache plane of the keys. */
    public static final int KEYS = 0;
    /** The cache plane of the values. */
    public static final int VALUES = 1;

    private final ModelConfig config;
    private final WorkerPool pool;
    private final AttentionWeights[] layers;
    private final Arena arena = Arena.ofShared();
    private final RotaryEmbedding rope;
    private final DenseMatMul matmul;
    private final CausalAttention attention;
    private final MemorySegment q;
    private final MemorySegment k;
    private final MemorySegment v;
    private final MemorySegment attnOut;

    GroupedQueryAttention(ModelConfig config, WeightLoader loader, ComputeBackend backend, WorkerPool pool,
                          int maxBatchTokens, int maxPositions) {
        this.config = config;
        this.pool = pool;
        this.layers = new AttentionWeights[config.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = loader.attention(l);
        }
        this.rope = RotaryEmbedding.of(config, maxPositions, arena);
        this.matmul = backend.newMatMul();
        this.attention = new CausalAttention(config, pool.threads(), maxPositions, arena);
        this.q = arena.allocate((long) maxBatchTokens * config.queryDim() * 4, 64);
        this.k = arena.allocate((long) maxBatchTokens * config.kvDim() * 4, 64);
        this.v = arena.allocate((long) maxBatchTokens * config.kvDim() * 4, 64);
        this.attnOut = arena.allocate((long) maxBatchTokens * config.queryDim() * 4, 64);
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "grouped-query attention (%d heads, %d KV heads x %d)", config.numHeads(),
                config.numKvHeads(), config.headDim());
    }

    @Override
    public int cacheFloatsPerToken() {
        return 2 * config.kvDim();
    }

    @Override
    public int uncompressedCacheFloatsPerToken() {
        return 2 * config.kvDim();
    }

    @Override
    public KvCache newCache(int layers, int capacity) {
        return new KvCache(layers, capacity, config.kvDim(), config.kvDim());
    }

    @Override
    public AttentionWeights weights(int layer) {
        return layers[layer];
    }

    @Override
    public void forward(int layer, StepBatch batch, MemorySegment xn, MemorySegment out) {
        int n = batch.size();
        AttentionWeights w = layers[layer];
        project(w.q(), w.qBias(), xn, q, n);
        project(w.k(), w.kBias(), xn, k, n);
        project(w.v(), w.vBias(), xn, v, n);
        int kvDim = config.kvDim();
        for (int t = 0; t < n; t++) {
            int pos = batch.position(t);
            rope.apply(q, (long) t * config.queryDim(), config.numHeads(), pos);
            rope.apply(k, (long) t * kvDim, config.numKvHeads(), pos);
            KvCache cache = batch.cache(t);
            MemorySegment.copy(k, (long) t * kvDim * 4, cache.plane(KEYS), cache.index(KEYS, layer, pos) * 4,
                    (long) kvDim * 4);
            MemorySegment.copy(v, (long) t * kvDim * 4, cache.plane(VALUES), cache.index(VALUES, layer, pos) * 4,
                    (long) kvDim * 4);
        }
        attention.run(pool, batch, layer, q, attnOut);
        matmul.apply(w.o(), attnOut, out, n);
    }

    private void project(WeightMatrix w, MemorySegment bias, MemorySegment xn, MemorySegment out, int n) {
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
