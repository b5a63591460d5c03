package io.moecluster.core.moe;

import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.attention.FeedForwardLayers;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * The feed-forward blocks of every layer run in this process: the same {@link MoeBlock} a
 * cluster uses, dispatching to an in-process {@link ExpertBank} that hosts every expert (the
 * shared one too), with dense MLP layers beside it. One MoE code path for every mode is what
 * makes the single-process engine and a cluster give the same bits.
 */
public final class LocalFeedForward implements FeedForward, AutoCloseable {
    private final ModelConfig config;
    private final ExpertBank bank;
    private final MoeBlock moe;
    private final FeedForwardLayers layers;

    public LocalFeedForward(ModelConfig config, WeightLoader loader, ComputeBackend backend, int maxTokens) {
        this.config = config;
        BitSet all = new BitSet();
        all.set(0, config.expertSlots());
        // A routed expert gets each token at most once per layer, and the shared expert every token.
        this.bank = new ExpertBank(config, loader, all, 0, config.numLayers() - 1, backend, maxTokens);
        this.moe = new MoeBlock(config, loader, new LocalExpertDispatcher(bank), backend, maxTokens);
        this.layers = new FeedForwardLayers(config, loader, backend, maxTokens, moe);
    }

    /** Bytes of FFN weights one token reads: the gates, top-k experts and the shared expert, or a dense MLP. */
    public long activeBytesPerToken() {
        long bytes = 0;
        for (int l = 0; l < config.numLayers(); l++) {
            if (!config.isMoeLayer(l)) {
                bytes += layers.denseBytes(l);
                continue;
            }
            bytes += moe.gateBytes(l) + config.topK() * bank.weightBytes(l, 0)
                    + bank.weightBytes(l, config.sharedExpertId());
        }
        return bytes;
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        layers.forward(layer, input, tokens, output);
    }

    @Override
    public void close() throws Exception {
        layers.close(); // closes the MoE block, which closes the bank through its dispatcher
    }
}
