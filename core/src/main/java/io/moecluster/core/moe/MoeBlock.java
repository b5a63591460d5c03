package io.moecluster.core.moe;

import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The MoE block of a cluster, seen from the router: gate and top-k on the normalised hidden states,
 * the tokens grouped per expert and handed to an {@link ExpertDispatcher} (one batch per expert and
 * layer, each row with its routing weight), then the scaled outputs summed per token in ascending
 * expert id. The choice of experts is the model's {@link ExpertSelection}. The shared expert,
 * where the model has one, is dispatched like any expert with every token, weighted by its
 * sigmoid gate (Qwen2-MoE) or by 1 (DeepSeek-V3's ungated shared experts).
 *
 * <p>Only MoE layers come here; dense MLP layers stay with the attention side. Not thread-safe:
 * one caller (an attention loop, or the router's request handler) drives it.
 */
public final class MoeBlock implements FeedForward, AutoCloseable {
    private final ModelConfig config;
    private final ExpertDispatcher dispatcher;
    private final WeightMatrix[] gates;
    private final WeightMatrix[] sharedGates;
    private final int sharedId;

    private final Arena arena = Arena.ofShared();
    private final MoeGate gate;
    private final MoeRouting routing;
    private final DenseMatMul matmul;
    private final MemorySegment grouped;
    private final MemorySegment expertOut;
    private final MemorySegment sharedOut;
    private final MemorySegment sharedLogits;
    private final MemorySegment rowWeights;
    private final MemorySegment sharedWeights;
    private final boolean shared;
    private final AtomicLongArray tokensRouted;

    public MoeBlock(ModelConfig config, WeightLoader loader, ExpertDispatcher dispatcher, ComputeBackend backend,
                    int maxTokens) {
        this.config = config;
        this.dispatcher = dispatcher;
        this.gates = new WeightMatrix[config.numLayers()];
        this.sharedGates = new WeightMatrix[config.numLayers()];
        for (int l = 0; l < config.numLayers(); l++) {
            if (config.isMoeLayer(l)) {
                gates[l] = loader.router(l);
                sharedGates[l] = loader.sharedExpertGate(l);
            }
        }
        this.sharedId = config.sharedExpertId();
        int hidden = config.hiddenSize();
        int k = config.topK();
        this.gate = new MoeGate(config.numExperts(), k, ExpertSelection.of(config, loader), maxTokens,
                backend.newMatMul(), arena);
        this.routing = new MoeRouting(maxTokens, config.numExperts(), k);
        this.matmul = backend.newMatMul();
        this.grouped = arena.allocate((long) maxTokens * k * hidden * 4, 64);
        this.expertOut = arena.allocate((long) maxTokens * k * hidden * 4, 64);
        this.rowWeights = arena.allocate((long) maxTokens * k * 4, 64);
        this.shared = config.hasSharedExpert();
        this.sharedOut = shared ? arena.allocate((long) maxTokens * hidden * 4, 64) : null;
        this.sharedLogits = shared ? arena.allocate((long) maxTokens * 4, 64) : null;
        this.sharedWeights = shared ? arena.allocate((long) maxTokens * 4, 64) : null;
        if (shared && !config.sharedExpertGated()) {
            // Ungated: every row's weight is 1, which the expert's scaling leaves exact.
            sharedWeights.fill((byte) 0);
            for (int t = 0; t < maxTokens; t++) {
                Kernels.set(sharedWeights, t, 1f);
            }
        }
        this.tokensRouted = new AtomicLongArray(config.expertSlots());
    }

    public ModelConfig config() {
        return config;
    }

    /** Bytes of the gate (and shared-expert gate) of a MoE layer; 0 for a dense layer. */
    public long gateBytes(int layer) {
        return gates[layer] == null ? 0
                : gates[layer].byteSize() + (sharedGates[layer] == null ? 0 : sharedGates[layer].byteSize());
    }

    /** Tokens routed to each expert since start, all layers summed; the shared expert last. */
    public long tokensRouted(int expert) {
        return tokensRouted.get(expert);
    }

    public int expertSlots() {
        return tokensRouted.length();
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (gates[layer] == null) {
            throw new IllegalArgumentException("layer " + layer + " is a dense layer; the router serves MoE layers only");
        }
        int hidden = config.hiddenSize();
        gate.route(layer, gates[layer], input, tokens, routing);
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < routing.topK(); j++) {
                Kernels.set(rowWeights, routing.slotRow(t, j), routing.weight(t, j));
            }
        }
        for (int row = 0; row < routing.rows(); row++) {
            MemorySegment.copy(input, (long) routing.rowToken(row) * hidden * 4, grouped, (long) row * hidden * 4,
                    (long) hidden * 4);
        }
        for (int e = 0; e < config.numExperts(); e++) {
            int n = routing.expertCount(e);
            if (n > 0) {
                dispatcher.dispatch(layer, e, grouped, routing.expertOffset(e), n, rowWeights, expertOut);
                tokensRouted.addAndGet(e, n);
            }
        }
        if (shared) {
            if (sharedGates[layer] != null) {
                matmul.apply(sharedGates[layer], input, sharedLogits, tokens);
                for (int t = 0; t < tokens; t++) {
                    Kernels.set(sharedWeights, t, (float) (1.0 / (1.0 + Math.exp(-Kernels.get(sharedLogits, t)))));
                }
            }
            dispatcher.dispatch(layer, sharedId, input, 0, tokens, sharedWeights, sharedOut);
            tokensRouted.addAndGet(sharedId, tokens);
        }
        dispatcher.awaitAll();
        MoeCombiner.sumScaled(routing, expertOut, output, hidden);
        if (shared) {
            Kernels.add(sharedOut, 0, output, 0, tokens * hidden);
        }
    }

    @Override
    public void close() {
        dispatcher.close();
        arena.close();
    }
}
