package io.moecluster.core.model;

import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.TensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.LongAdder;

/**
 * Turns checkpoint tensors into kernel operands, one model part at a time, checking every shape
 * against the config. Each service asks only for the parts it runs: an expert service loads its
 * experts, never the embeddings.
 *
 * <p>Matrices, whatever their format (F32, BF16, F16), stay as read-only mappings of the
 * checkpoint, read by their format's kernels ({@link WeightMatrix#of}); nothing is widened. Only the
 * 1-D tensors (norms, biases: a hidden size of floats each) are copied, to aligned f32.
 * {@link #mappedBytes()} and {@link #allocatedBytes()} say how much of each this loader handed out.
 */
public final class WeightLoader implements AutoCloseable {
    private final Checkpoint checkpoint;
    private final ModelConfig config;
    private final TensorNames names;
    private final Arena arena = Arena.ofShared();
    private final LongAdder mapped = new LongAdder();
    private final LongAdder allocated = new LongAdder();

    public WeightLoader(Checkpoint checkpoint, ModelConfig config) {
        this.checkpoint = checkpoint;
        this.config = config;
        this.names = new TensorNames(config.architecture());
    }

    public ModelConfig config() {
        return config;
    }

    public WeightMatrix embeddings() {
        return matrix(TensorNames.EMBED, config.vocabSize(), config.hiddenSize());
    }

    public WeightMatrix lmHead() {
        if (config.tieWordEmbeddings() && !checkpoint.contains(TensorNames.LM_HEAD)) {
            return embeddings();
        }
        return matrix(TensorNames.LM_HEAD, config.vocabSize(), config.hiddenSize());
    }

    public MemorySegment finalNorm() {
        return vector(TensorNames.FINAL_NORM, config.hiddenSize());
    }

    public AttentionWeights attention(int layer) {
        int h = config.hiddenSize();
        int qd = config.queryDim();
        int kvd = config.kvDim();
        boolean bias = config.qkvBias();
        return new AttentionWeights(
                vector(names.inputNorm(layer), h),
                vector(names.postAttentionNorm(layer), h),
                matrix(names.attention(layer, 'q', "weight"), qd, h),
                matrix(names.attention(layer, 'k', "weight"), kvd, h),
                matrix(names.attention(layer, 'v', "weight"), kvd, h),
                matrix(names.attention(layer, 'o', "weight"), h, qd),
                bias ? vector(names.attention(layer, 'q', "bias"), qd) : null,
                bias ? vector(names.attention(layer, 'k', "bias"), kvd) : null,
                bias ? vector(names.attention(layer, 'v', "bias"), kvd) : null);
    }

    /** The router's gate: {@code [num_experts, hidden]}. */
    public WeightMatrix router(int layer) {
        requireMoeLayer(layer);
        return matrix(names.router(layer), config.numExperts(), config.hiddenSize());
    }

    public FfnWeights expert(int layer, int expert) {
        requireMoeLayer(layer);
        if (expert < 0 || expert >= config.numExperts()) {
            throw new IllegalArgumentException("expert " + expert + " out of range [0, " + config.numExperts() + ")");
        }
        return ffn(names.expert(layer, expert), config.expertIntermediateSize());
    }

    public FfnWeights sharedExpert(int layer) {
        requireMoeLayer(layer);
        return config.hasSharedExpert() ? ffn(names.sharedExpert(layer), config.sharedExpertIntermediateSize()) : null;
    }

    /** The shared expert's sigmoid gate as a {@code [1, hidden]} matrix, or null without a shared expert. */
    public WeightMatrix sharedExpertGate(int layer) {
        requireMoeLayer(layer);
        return config.hasSharedExpert() ? matrix(names.sharedExpertGate(layer), 1, config.hiddenSize()) : null;
    }

    public FfnWeights denseMlp(int layer) {
        if (config.isMoeLayer(layer)) {
            throw new IllegalArgumentException("layer " + layer + " is a MoE layer, not a dense MLP");
        }
        return ffn(names.denseMlp(layer), config.intermediateSize());
    }

    private void requireMoeLayer(int layer) {
        if (!config.isMoeLayer(layer)) {
            throw new IllegalArgumentException("layer " + layer + " has a dense MLP, not a MoE block");
        }
    }

    private FfnWeights ffn(String[] n, int ffn) {
        int h = config.hiddenSize();
        return new FfnWeights(matrix(n[0], ffn, h), matrix(n[1], ffn, h), matrix(n[2], h, ffn));
    }

    private WeightMatrix matrix(String name, int rows, int cols) {
        TensorInfo info = checkpoint.info(name, rows, cols);
        WeightMatrix w = WeightMatrix.of(name, checkpoint.map(info), info.dtype(), rows, cols);
        mapped.add(w.byteSize());
        return w;
    }

    /** A 1-D tensor widened to an aligned f32 copy by its format's {@link WeightMatrix#copyRowTo}. */
    private MemorySegment vector(String name, int n) {
        TensorInfo info = checkpoint.info(name, n);
        WeightMatrix row = WeightMatrix.of(name, checkpoint.map(info), info.dtype(), 1, n);
        MemorySegment out = arena.allocate((long) n * 4, 64);
        allocated.add(out.byteSize());
        row.copyRowTo(0, out, 0);
        return out;
    }

    /**
     * Bytes of weight matrices this loader has handed out as mappings of the checkpoint (counted
     * once per call: a part loaded twice counts twice).
     */
    public long mappedBytes() {
        return mapped.sum();
    }

    /** Bytes this loader allocated: the f32 copies of 1-D tensors (norms, biases); never a matrix. */
    public long allocatedBytes() {
        return allocated.sum();
    }

    @Override
    public void close() {
        arena.close();
    }
}
