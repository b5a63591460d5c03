package io.moecluster.core.model;

import java.lang.foreign.MemorySegment;

/**
 * What every kind of attention layer's weights carry besides its projections: the two RMSNorms
 * around it (f32 copies), which the transformer applies whatever the attention kind.
 */
public sealed interface LayerWeights permits AttentionWeights, MlaWeights {
    MemorySegment inputNorm();

    MemorySegment postAttentionNorm();

    /** Bytes of the projection matrices one token reads (norms excluded: a hidden size of floats). */
    long byteSize();
}
