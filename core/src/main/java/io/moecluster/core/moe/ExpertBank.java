package io.moecluster.core.moe;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * The experts one process hosts, over a layer range: what an expert service runs. Expert ids are
 * the routed experts {@code 0..E-1} and, where the model has one, the shared expert as id
 * {@code E} ({@link #sharedExpertId}). Only the hosted experts' tensors are mapped.
 *
 * <p>Each output row comes back scaled by its routing weight ({@code w * ffn(x)}, one rounding),
 * so the router's combine is a plain sum; see {@link MoeCombiner}.
 */
public final class ExpertBank implements AutoCloseable {
    private final ModelConfig config;
    private final int firstLayer;
    private final int lastLayer;
    private final BitSet experts;
    private final FfnWeights[][] weights;
    private final Arena arena = Arena.ofShared();
    private final ExpertFfn ffn;
    private final int maxRows;

    /**
     * @param experts hosted expert ids, the shared expert as {@code numExperts}
     * @param firstLayer first hosted layer, inclusive
     * @param lastLayer last hosted layer, inclusive
     */
    public ExpertBank(ModelConfig config, WeightLoader loader, BitSet experts, int firstLayer, int lastLayer,
                      WorkerPool pool, int maxRows) {
        if (firstLayer < 0 || lastLayer >= config.numLayers() || firstLayer > lastLayer) {
            throw new IllegalArgumentException("layer range " + firstLayer + "-" + lastLayer + " outside the model's 0-"
                    + (config.numLayers() - 1));
        }
        int maxId = sharedExpertId(config) + (config.hasSharedExpert() ? 1 : 0);
        if (experts.isEmpty() || experts.length() > maxId) {
            throw new IllegalArgumentException("experts " + experts + " outside 0-" + (maxId - 1)
                    + (config.hasSharedExpert() ? " (" + sharedExpertId(config) + " is the shared expert)" : ""));
        }
        this.config = config;
        this.firstLayer = firstLayer;
        this.lastLayer = lastLayer;
        this.experts = (BitSet) experts.clone();
        this.maxRows = maxRows;
        this.weights = new FfnWeights[config.numLayers()][maxId];
        int maxFfn = 1;
        for (int l = firstLayer; l <= lastLayer; l++) {
            if (!config.isMoeLayer(l)) {
                continue;
            }
            for (int e = experts.nextSetBit(0); e >= 0; e = experts.nextSetBit(e + 1)) {
                FfnWeights w = e == sharedExpertId(config) ? loader.sharedExpert(l) : loader.expert(l, e);
                weights[l][e] = w;
                maxFfn = Math.max(maxFfn, w.ffn());
            }
        }
        this.ffn = new ExpertFfn(maxRows, maxFfn, pool, arena);
    }

    /** The wire id of the shared expert: one past the routed experts. */
    public static int sharedExpertId(ModelConfig config) {
        return config.numExperts();
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
        return maxRows;
    }

    /**
     * Runs expert {@code expert} of {@code layer} on rows {@code [inRow, inRow + rows)} of {@code in}
     * and writes {@code weight[i] * ffn(x_i)} to the same number of rows of {@code out} from {@code outRow}.
     *
     * @param weights one routing weight per row, starting at {@code weightIndex}
     */
    public void run(int layer, int expert, MemorySegment in, int inRow, int rows, float[] weights, int weightIndex,
                    MemorySegment out, int outRow) {
        if (!hosts(layer, expert)) {
            throw new IllegalArgumentException("expert " + expert + " of layer " + layer + " is not hosted here");
        }
        if (rows > maxRows) {
            throw new IllegalArgumentException(rows + " rows exceed this bank's max of " + maxRows);
        }
        ffn.run(this.weights[layer][expert], in, inRow, rows, out, outRow);
        int hidden = config.hiddenSize();
        for (int i = 0; i < rows; i++) {
            Kernels.scale(out, (long) (outRow + i) * hidden, hidden, weights[weightIndex + i]);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
