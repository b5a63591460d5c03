package io.moecluster.core.attention;

import io.moecluster.core.moe.ExpertFfn;

import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Runs a model's dense MLP layers (Qwen2-MoE {@code mlp_only_layers}) in this process and hands
 * its MoE layers to {@code moe}: in a cluster only MoE blocks travel to the router.
 */
public final class FeedForwardLayers implements FeedForward, AutoCloseable {
    private final FeedForward moe;
    private final FfnWeights[] dense;
    private final Arena arena = Arena.ofShared();
    private final ExpertFfn ffn;

    public FeedForwardLayers(ModelConfig config, WeightLoader loader, WorkerPool pool, int maxTokens, FeedForward moe) {
        this.moe = moe;
        this.dense = new FfnWeights[config.numLayers()];
        boolean any = false;
        for (int l = 0; l < dense.length; l++) {
            if (!config.isMoeLayer(l)) {
                dense[l] = loader.denseMlp(l);
                any = true;
            }
        }
        this.ffn = any ? new ExpertFfn(maxTokens, config.intermediateSize(), pool, arena) : null;
    }

    /** Weight bytes of the dense MLP of {@code layer}; 0 for a MoE layer. */
    public long denseBytes(int layer) {
        return dense[layer] == null ? 0 : dense[layer].byteSize();
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (dense[layer] != null) {
            ffn.run(dense[layer], input, 0, tokens, output, 0);
        } else {
            moe.forward(layer, input, tokens, output);
        }
    }

    @Override
    public void close() throws Exception {
        arena.close();
        if (moe instanceof AutoCloseable c) {
            c.close();
        }
    }
}
