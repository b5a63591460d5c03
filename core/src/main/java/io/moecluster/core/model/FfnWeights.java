package io.moecluster.core.model;

import io.moecluster.core.kernels.WeightMatrix;

/** A SwiGLU feed-forward network: {@code down(silu(gate(x)) * up(x))}; one expert, or a dense MLP. */
public record FfnWeights(WeightMatrix gate, WeightMatrix up, WeightMatrix down) {
    public int hidden() {
        return gate.cols();
    }

    public int ffn() {
        return gate.rows();
    }

    public long byteSize() {
        return gate.byteSize() + up.byteSize() + down.byteSize();
    }
}
