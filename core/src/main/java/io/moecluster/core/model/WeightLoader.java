package io.moecluster.core.model;

import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.TensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Turns checkpoint tensors into kernel operands, one model part at a time, checking every shape
 * against the config. Each service asks only for the parts it runs: an expert service loads its
 * experts, never the embeddings.
 *
 * <p>F32 and BF16 matrices stay as read-only mappings of the checkpoint. F16 matrices are widened
 * to F32 copies (the kernels have no f16 path yet), which doubles their resident size.
 */
public final class WeightLoader implements AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort RAW16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final Checkpoint checkpoint;
    private final ModelConfig config;
    private final TensorNames names;
    private final Arena arena = Arena.ofShared();

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
        MemorySegment data = checkpoint.map(info);
        if (info.dtype() == DType.F16) {
            return new WeightMatrix(name, toF32(info, data), DType.F32, rows, cols);
        }
        return new WeightMatrix(name, data, info.dtype(), rows, cols);
    }

    private MemorySegment vector(String name, int n) {
        TensorInfo info = checkpoint.info(name, n);
        return toF32(info, checkpoint.map(info));
    }

    private MemorySegment toF32(TensorInfo info, MemorySegment data) {
        long n = info.elementCount();
        MemorySegment out = arena.allocate(n * 4, 64);
        for (long i = 0; i < n; i++) {
            float v = switch (info.dtype()) {
                case F32 -> data.getAtIndex(F32, i);
                case BF16 -> Bf16.toFloat(data.getAtIndex(RAW16, i));
                case F16 -> Float.float16ToFloat(data.getAtIndex(RAW16, i));
            };
            out.setAtIndex(F32, i, v);
        }
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }
}
