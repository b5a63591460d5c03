package io.moecluster.core.model;

import io.moecluster.core.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * One layer's multi-head latent attention weights (DeepSeek-V3). Queries: {@code qA}
 * ({@code [q_lora_rank, hidden]}), {@code qANorm}, then {@code qB} ({@code [heads x qk_head_dim,
 * q_lora_rank]}); without q LoRA {@code qA} and {@code qANorm} are null and {@code qB} is
 * {@code q_proj} ({@code [heads x qk_head_dim, hidden]}). Keys and values: {@code kvA}
 * ({@code [kv_lora_rank + qk_rope_head_dim, hidden]}), {@code kvANorm} over the latent, {@code kvB}
 * ({@code [heads x (qk_nope_head_dim + v_head_dim), kv_lora_rank]}); {@code o}
 * ({@code [hidden, heads x v_head_dim]}). Norms are f32 copies.
 */
public record MlaWeights(
        MemorySegment inputNorm,
        MemorySegment postAttentionNorm,
        WeightMatrix qA,
        MemorySegment qANorm,
        WeightMatrix qB,
        WeightMatrix kvA,
        MemorySegment kvANorm,
        WeightMatrix kvB,
        WeightMatrix o) implements LayerWeights {

    @Override
    public long byteSize() {
        return (qA == null ? 0 : qA.byteSize()) + qB.byteSize() + kvA.byteSize() + kvB.byteSize() + o.byteSize();
    }
}
