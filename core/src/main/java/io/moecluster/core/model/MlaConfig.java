package io.moecluster.core.model;

/**
 * Multi-head latent attention (DeepSeek-V2/V3): queries through an optional low-rank bottleneck,
 * keys and values through a shared latent of {@code kv_lora_rank} plus one rope key of
 * {@code qk_rope_head_dim} shared by every head. Per head q is {@code [nope | rope]},
 * {@code kv_b_proj} gives {@code [k_nope | v]}.
 *
 * @param qLoraRank {@code q_lora_rank}; 0 when null (queries through {@code q_proj})
 * @param ropeInterleave {@code rope_interleave} (default true): rope pairs dimensions (0,1), (2,3), ...
 */
public record MlaConfig(int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim,
                        boolean ropeInterleave) {
    public int qkHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    /** Floats per token and layer in the compressed KV cache: the latent and the shared rope key. */
    public int cacheFloatsPerToken() {
        return kvLoraRank + qkRopeHeadDim;
    }
}
