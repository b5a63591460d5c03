package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.model.LayerWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.MemorySegment;

/**
 * The attention half of every decoder layer, one implementation per kind, each with its own
 * weights, RoPE, scratch and KV-cache layout: the seam {@link Transformer} calls between the
 * input norm and the residual.
 *
 * <ul>
 *   <li>{@link GroupedQueryAttention} (Mixtral, Qwen2-MoE): q/k/v projections, RoPE on whole heads,
 *       a cache of {@code 2 x kv_heads x head_dim} floats per token and layer.
 *   <li>{@link MultiHeadLatentAttention} (DeepSeek-V3): a cache of the normalised latent and the
 *       shared rope key, {@code kv_lora_rank + qk_rope_head_dim} floats per token and layer;
 *       prompt tokens expand the cached latents into per-head keys and values, generated tokens
 *       fold the up-projection into the query and the output instead.
 * </ul>
 *
 * <p>A kind allocates its scratch once for the largest step and nothing per step; every result is
 * computed by one thread in a fixed order, so it depends on neither the thread count nor the
 * token's batch-mates. Not thread-safe: the transformer's one caller drives it.
 */
public sealed interface AttentionKind extends AutoCloseable permits GroupedQueryAttention, MultiHeadLatentAttention {
    /** For logs and benchmarks, e.g. "grouped-query attention (16 heads, 4 KV heads x 64)". */
    String describe();

    /** Floats this kind caches per token and layer. */
    int cacheFloatsPerToken();

    /** Floats an uncompressed cache would hold per token and layer: every head's key and value. */
    int uncompressedCacheFloatsPerToken();

    /** A cache for one sequence of {@code capacity} positions, in this kind's layout. */
    KvCache newCache(int layers, int capacity);

    /** The weights of {@code layer} (its norms included). */
    LayerWeights weights(int layer);

    /**
     * Attention of layer {@code layer} for every token of {@code batch}: {@code xn} holds the
     * input-normalised hidden states {@code [tokens, hidden]}; each token's keys (or latent) are
     * written to its cache at its position, then {@code out} ({@code [tokens, hidden]}, fully
     * overwritten) receives the output projection, without the residual.
     */
    void forward(int layer, StepBatch batch, MemorySegment xn, MemorySegment out);

    @Override
    void close();

    /** The kind {@code config} declares, with its weights loaded and its scratch sized for a step. */
    static AttentionKind of(ModelConfig config, WeightLoader loader, ComputeBackend backend, WorkerPool pool,
                            int maxBatchTokens, int maxPositions) {
        return config.isMla()
                ? new MultiHeadLatentAttention(config, loader, backend, pool, maxBatchTokens, maxPositions)
                : new GroupedQueryAttention(config, loader, backend, pool, maxBatchTokens, maxPositions);
    }
}
