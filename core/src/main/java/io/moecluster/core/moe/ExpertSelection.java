package io.moecluster.core.moe;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.MemorySegment;

/**
 * How a MoE layer turns one token's gate logits into its k experts and their weights: the routing
 * seam of {@link MoeGate}, which computes the logits (a matmul in f32) and groups the tokens.
 *
 * <ul>
 *   <li>{@link SoftmaxTopK} (Mixtral, Qwen2-MoE): softmax over all experts, the top-k, optionally
 *       renormalised.
 *   <li>{@link GroupLimitedTopK} (DeepSeek-V3): sigmoid scores, a per-layer correction bias for
 *       the choice only, group-limited top-k, weights renormalised and scaled.
 * </ul>
 *
 * <p>An implementation owns its scratch (sized once, no allocation per token) and breaks ties
 * towards the lower expert id, so every mode chooses alike. Not thread-safe.
 */
public sealed interface ExpertSelection permits SoftmaxTopK, GroupLimitedTopK {
    /**
     * Chooses token experts from {@code numExperts} f32 logits at float index {@code index} of
     * {@code logits} (which it may overwrite): {@code ids[0..k)} and {@code weights[0..k)}, in any order.
     */
    void select(int layer, MemorySegment logits, long index, int[] ids, float[] weights);

    /** The selection {@code config} declares; a group-limited one reads each MoE layer's correction bias. */
    static ExpertSelection of(ModelConfig config, WeightLoader loader) {
        if (config.groupRouting() == null) {
            return new SoftmaxTopK(config.numExperts(), config.topK(), config.normTopKProb());
        }
        MemorySegment[] bias = new MemorySegment[config.numLayers()];
        for (int l = 0; l < bias.length; l++) {
            if (config.isMoeLayer(l)) {
                bias[l] = loader.routerBias(l);
            }
        }
        return new GroupLimitedTopK(config.numExperts(), config.topK(), config.groupRouting(), config.normTopKProb(),
                bias);
    }
}
