package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.MemorySegment;

/**
 * The feed-forward half of every decoder layer: a dense MLP layer (Qwen2-MoE
 * {@code mlp_only_layers}, DeepSeek-V3's first layers) runs here, a MoE layer goes to {@code moe}
 * (the MoE block in process, or the router-service over Aeron). In a cluster only MoE layers
 * leave the attention service.
 */
public final class FeedForwardLayers implements FeedForward, AutoCloseable {
    private final FeedForward moe;
    private final FfnWeights[] dense;
    private final FfnKernel ffn;

    public FeedForwardLayers(ModelConfig config, WeightLoader loader, ComputeBackend backend, int maxTokens,
                             FeedForward moe) {
        this.moe = moe;
        this.dense = new FfnWeights[config.numLayers()];
        boolean any = false;
        for (int l = 0; l < dense.length; l++) {
            if (!config.isMoeLayer(l)) {
                dense[l] = loader.denseMlp(l);
                any = true;
            }
        }
        this.ffn = any ? backend.newFfn(maxTokens, config.intermediateSize()) : null;
        for (FfnWeights w : dense) {
            if (w != null) {
                ffn.prepare(w);
            }
        }
    }

    /** Weight bytes of the dense MLP of {@code layer}; 0 for a MoE layer. */
    public long denseBytes(int layer) {
        return dense[layer] == null ? 0 : dense[layer].byteSize();
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (dense[layer] != null) {
            ffn.run(dense[layer], input, 0, tokens, null, 0, output, 0);
        } else {
            moe.forward(layer, input, tokens, output);
        }
    }

    /** A dense layer runs here, at once; a MoE layer is started on {@code moe}. */
    @Override
    public void submit(int slot, int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (dense[layer] != null) {
            ffn.run(dense[layer], input, 0, tokens, null, 0, output, 0);
        } else {
            moe.submit(slot, layer, input, tokens, output);
        }
    }

    @Override
    public void await(int slot) {
        moe.await(slot); // after a dense layer the slot has nothing in flight there: returns at once
    }

    @Override
    public boolean overlaps() {
        return moe.overlaps();
    }

    @Override
    public void close() throws Exception {
        if (ffn != null) {
            ffn.close();
        }
        if (moe instanceof AutoCloseable c) {
            c.close();
        }
    }
}
