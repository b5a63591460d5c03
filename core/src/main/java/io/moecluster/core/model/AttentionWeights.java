package io.moecluster.core.model;

import io.moecluster.core.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;

/**
 * One layer's attention-side weights: both norms and the q/k/v/o projections. Norms and biases are
 * f32 copies (small); biases are null when the architecture has none.
 */
public record AttentionWeights(
        MemorySegment inputNorm,
        MemorySegment postAttentionNorm,
        WeightMatrix q,
        WeightMatrix k,
        WeightMatrix v,
        WeightMatrix o,
        MemorySegment qBias,
        MemorySegment kBias,
        MemorySegment vBias) implements LayerWeights {

    @Override
    public long byteSize() {
        return q.byteSize() + k.byteSize() + v.byteSize() + o.byteSize();
    }
}
