package io.moecluster.core.moe;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.FfnBatch;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * The experts one process hosts, over a layer range: what an expert service runs. Expert ids are
 * the routed experts {@code 0..E-1} and, where the model has one, the shared expert as id
 * {@code E} ({@link ModelConfig#sharedExpertId()}). Only the hosted experts' tensors are mapped,
 * and each is handed to the compute backend once ({@link FfnKernel#prepare}).
 *
 * <p>Each output row comes back scaled by its routing weight ({@code w * ffn(x)}, one rounding),
 * so the router's combine is a plain sum; see {@link MoeCombiner}.
 */
public final class ExpertBank implements AutoCloseable {
    private final int firstLayer;
    private final int lastLayer;
    private final BitSet experts;
    private final FfnWeights[][] weights;
    private final FfnKernel ffn;
    private final FfnBatch queued;

    /**
     * @param experts hosted expert ids, the shared expert as {@code numExperts}
     * @param firstLayer first hosted layer, inclusive
     * @param lastLayer last hosted layer, inclusive
     * @param maxRows the most rows of one batch
     */
    public ExpertBank(ModelConfig config, WeightLoader loader, BitSet experts, int firstLayer, int lastLayer,
                      ComputeBackend backend, int maxRows) {
        if (firstLayer < 0 || lastLayer >= config.numLayers() || firstLayer > lastLayer) {
            throw new IllegalArgumentException("layer range " + firstLayer + "-" + lastLayer + " outside the model's 0-"
                    + (config.numLayers() - 1));
        }
        int slots = config.expertSlots();
        if (experts.isEmpty() || experts.length() > slots) {
            throw new IllegalArgumentException("experts " + experts + " outside 0-" + (slots - 1)
                    + (config.hasSharedExpert() ? " (" + config.sharedExpertId() + " is the shared expert)" : ""));
        }
        this.firstLayer = firstLayer;
        this.lastLayer = lastLayer;
        this.experts = (BitSet) experts.clone();
        this.weights = new FfnWeights[config.numLayers()][slots];
        int maxFfn = 1;
        for (int l = firstLayer; l <= lastLayer; l++) {
            if (!config.isMoeLayer(l)) {
                continue;
            }
            for (int e = experts.nextSetBit(0); e >= 0; e = experts.nextSetBit(e + 1)) {
                FfnWeights w = e == config.sharedExpertId() ? loader.sharedExpert(l) : loader.expert(l, e);
                weights[l][e] = w;
                maxFfn = Math.max(maxFfn, w.ffn());
            }
        }
        this.ffn = backend.newFfn(maxRows, maxFfn);
        this.queued = new FfnBatch(slots);
        for (FfnWeights[] layer : weights) {
            for (FfnWeights w : layer) {
                if (w != null) {
                    ffn.prepare(w);
                }
            }
        }
    }

    public boolean hosts(int layer, int expert) {
        return layer >= 0 && layer < weights.length && expert >= 0 && expert < weights[layer].length
                && weights[layer][expert] != null;
    }

    /** Weight bytes of one hosted expert of {@code layer} (0 when not hosted). */
    public long weightBytes(int layer, int expert) {
        return hosts(layer, expert) ? weights[layer][expert].byteSize() : 0;
    }

    public BitSet experts() {
        return (BitSet) experts.clone();
    }

    public int firstLayer() {
        return firstLayer;
    }

    public int lastLayer() {
        return lastLayer;
    }

    public int maxRows() {
        return ffn.maxRows();
    }

    /**
     * Runs expert {@code expert} of {@code layer} on rows {@code [inRow, inRow + rows)} of {@code in}
     * and writes {@code weight[i] * ffn(x_i)} to the same number of rows of {@code out} from {@code outRow}.
     *
     * @param weights one f32 routing weight per row, from float index {@code weightIndex}
     */
    public void run(int layer, int expert, MemorySegment in, int inRow, int rows, MemorySegment weights,
                    long weightIndex, MemorySegment out, int outRow) {
        if (!hosts(layer, expert)) {
            throw new IllegalArgumentException("expert " + expert + " of layer " + layer + " is not hosted here");
        }
        if (rows > ffn.maxRows()) {
            throw new IllegalArgumentException(rows + " rows exceed this bank's max of " + ffn.maxRows());
        }
        ffn.run(this.weights[layer][expert], in, inRow, rows, weights, weightIndex, out, outRow);
    }

    /**
     * Queues what {@link #run} would compute, for {@link #runQueued}: the single-process engine
     * queues every expert of a layer, so that a device backend runs them in one grouped call.
     * Nothing passed in may change before {@code runQueued} returns.
     */
    public void queue(int layer, int expert, MemorySegment in, int inRow, int rows, MemorySegment weights,
                      long weightIndex, MemorySegment out, int outRow) {
        if (!hosts(layer, expert)) {
            throw new IllegalArgumentException("expert " + expert + " of layer " + layer + " is not hosted here");
        }
        if (rows > ffn.maxRows()) {
            throw new IllegalArgumentException(rows + " rows exceed this bank's max of " + ffn.maxRows());
        }
        queued.add(this.weights[layer][expert], in, inRow, rows, weights, weightIndex, out, outRow);
    }

    /** Runs everything {@link #queue}d since the last call, then forgets it (also when it fails). */
    public void runQueued() {
        try {
            if (queued.size() > 0) {
                ffn.runBatch(queued);
            }
        } finally {
            queued.clear();
        }
    }

    @Override
    public void close() {
        ffn.close();
    }
}
