package io.moecluster.core.forward;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.MatMul;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The feed-forward blocks of every layer run in this process: the gate, the experts (each once
 * over its grouped rows), the combine, the shared expert where the model has one, and dense MLP
 * layers. The single-process engine and the embedded-router mode use this.
 */
public final class LocalFeedForward implements FeedForward, AutoCloseable {
    private final ModelConfig config;
    private final WeightMatrix[] routers;
    private final FfnWeights[][] experts;
    private final FfnWeights[] shared;
    private final WeightMatrix[] sharedGates;
    private final FfnWeights[] dense;

    private final Arena arena = Arena.ofShared();
    private final MoeGate gate;
    private final MoeRouting routing;
    private final ExpertFfn ffn;
    private final MatMul matmul;
    private final MemorySegment grouped;
    private final MemorySegment expertOut;
    private final MemorySegment sharedOut;
    private final MemorySegment sharedGateLogits;

    public LocalFeedForward(ModelConfig config, WeightLoader loader, WorkerPool pool, int maxTokens) {
        this.config = config;
        int layers = config.numLayers();
        this.routers = new WeightMatrix[layers];
        this.experts = new FfnWeights[layers][];
        this.shared = new FfnWeights[layers];
        this.sharedGates = new WeightMatrix[layers];
        this.dense = new FfnWeights[layers];
        for (int l = 0; l < layers; l++) {
            if (config.isMoeLayer(l)) {
                routers[l] = loader.router(l);
                experts[l] = new FfnWeights[config.numExperts()];
                for (int e = 0; e < config.numExperts(); e++) {
                    experts[l][e] = loader.expert(l, e);
                }
                shared[l] = loader.sharedExpert(l);
                sharedGates[l] = loader.sharedExpertGate(l);
            } else {
                dense[l] = loader.denseMlp(l);
            }
        }
        int hidden = config.hiddenSize();
        int k = config.topK();
        int maxFfn = Math.max(config.expertIntermediateSize(),
                Math.max(config.intermediateSize(), config.sharedExpertIntermediateSize()));
        this.gate = new MoeGate(config.numExperts(), k, config.normTopKProb(), maxTokens, pool, arena);
        this.routing = new MoeRouting(maxTokens, config.numExperts(), k);
        this.ffn = new ExpertFfn(maxTokens * k, maxFfn, pool, arena);
        this.matmul = new MatMul(pool);
        this.grouped = arena.allocate((long) maxTokens * k * hidden * 4, 64);
        this.expertOut = arena.allocate((long) maxTokens * k * hidden * 4, 64);
        this.sharedOut = config.hasSharedExpert() ? arena.allocate((long) maxTokens * hidden * 4, 64) : null;
        this.sharedGateLogits = config.hasSharedExpert() ? arena.allocate((long) maxTokens * 4, 64) : null;
    }

    /** Bytes of FFN weights one token reads: top-k experts, plus the router, shared expert or dense MLP. */
    public long activeBytesPerToken() {
        long bytes = 0;
        for (int l = 0; l < config.numLayers(); l++) {
            if (dense[l] != null) {
                bytes += dense[l].byteSize();
                continue;
            }
            bytes += routers[l].byteSize() + config.topK() * experts[l][0].byteSize();
            if (shared[l] != null) {
                bytes += shared[l].byteSize() + sharedGates[l].byteSize();
            }
        }
        return bytes;
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        int hidden = config.hiddenSize();
        if (dense[layer] != null) {
            ffn.run(dense[layer], input, 0, tokens, output, 0);
            return;
        }
        gate.route(routers[layer], input, tokens, routing);
        for (int row = 0; row < routing.rows(); row++) {
            MemorySegment.copy(input, (long) routing.rowToken(row) * hidden * 4, grouped, (long) row * hidden * 4,
                    (long) hidden * 4);
        }
        FfnWeights[] layerExperts = experts[layer];
        for (int e = 0; e < layerExperts.length; e++) {
            int n = routing.expertCount(e);
            if (n > 0) {
                ffn.run(layerExperts[e], grouped, routing.expertOffset(e), n, expertOut, routing.expertOffset(e));
            }
        }
        MoeCombiner.combine(routing, expertOut, output, hidden);
        if (shared[layer] != null) {
            ffn.run(shared[layer], input, 0, tokens, sharedOut, 0);
            matmul.apply(sharedGates[layer], input, sharedGateLogits, tokens);
            for (int t = 0; t < tokens; t++) {
                float g = (float) (1.0 / (1.0 + Math.exp(-Kernels.get(sharedGateLogits, t))));
                Kernels.addScaled(g, sharedOut, (long) t * hidden, output, (long) t * hidden, hidden);
            }
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
