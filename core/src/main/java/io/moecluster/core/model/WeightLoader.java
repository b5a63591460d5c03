package io.moecluster.core.model;

import io.moecluster.core.kernels.BlockScales;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.TensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns checkpoint tensors into kernel operands, one model part at a time, checking every shape
 * against the config. Each service asks only for the parts it runs: an expert service loads its
 * experts, never the embeddings.
 *
 * <p>Matrices, whatever their format (F32, BF16, F16, F8_E4M3, I8), stay as read-only mappings of the
 * checkpoint, read by their format's kernels ({@link WeightMatrix#of}); nothing is widened. An
 * F8_E4M3 or I8 weight's block scales are its {@code <name>_scale_inv} tensor, mapped too, with the block
 * size of {@code quantization_config} (this loader is the {@link BlockScales.Source}). Only the 1-D
 * tensors (norms, biases: a hidden size of floats each) are copied, to aligned f32.
 * {@link #mappedBytes()} and {@link #allocatedBytes()} say how much of each this loader handed out.
 *
 * <p>Tensors of layers past {@code num_hidden_layers} (DeepSeek-V3's multi-token-prediction layer,
 * {@code model.layers.61.*}) are never asked for; the loader says so in one log line.
 */
public final class WeightLoader implements AutoCloseable, BlockScales.Source {
    private static final Logger LOG = LoggerFactory.getLogger(WeightLoader.class);
    /** q_a_layernorm and kv_a_layernorm use this epsilon whatever rms_norm_eps says (as DeepSeek-V3 does). */
    public static final float MLA_NORM_EPS = 1e-6f;

    private final Checkpoint checkpoint;
    private final ModelConfig config;
    private final TensorNames names;
    private final Arena arena = Arena.ofShared();
    private final LongAdder mapped = new LongAdder();
    private final LongAdder allocated = new LongAdder();
    private final SortedSet<Integer> skippedLayers;

    public WeightLoader(Checkpoint checkpoint, ModelConfig config) {
        this.checkpoint = checkpoint;
        this.config = config;
        this.names = new TensorNames(config.architecture());
        SortedSet<Integer> extra = new TreeSet<>();
        int count = 0;
        for (String name : checkpoint.tensorNames()) {
            int layer = TensorNames.layerOf(name);
            if (layer >= config.numLayers()) {
                extra.add(layer);
                count++;
            }
        }
        if (count > 0) {
            LOG.info("{}: skipping {} tensors of layer(s) {} past num_hidden_layers {} (multi-token prediction)",
                    checkpoint.dir(), count, extra, config.numLayers());
        }
        this.skippedLayers = Collections.unmodifiableSortedSet(extra);
    }

    /** Layers the checkpoint holds past {@code num_hidden_layers} (DeepSeek-V3's MTP layer), never loaded. */
    public SortedSet<Integer> skippedLayers() {
        return skippedLayers;
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

    /** The layer's attention weights, of the kind the config names: {@link MlaWeights} or {@link AttentionWeights}. */
    public LayerWeights layer(int layer) {
        return config.isMla() ? mla(layer) : attention(layer);
    }

    /** Multi-head latent attention weights of {@code layer} (DeepSeek-V3). */
    public MlaWeights mla(int layer) {
        MlaConfig m = config.mla();
        if (m == null) {
            throw new IllegalArgumentException(config.architecture().modelType() + " has no multi-head latent attention");
        }
        int h = config.hiddenSize();
        int qOut = config.numHeads() * m.qkHeadDim();
        boolean lora = m.qLoraRank() > 0;
        return new MlaWeights(
                vector(names.inputNorm(layer), h),
                vector(names.postAttentionNorm(layer), h),
                lora ? matrix(names.mla(layer, "q_a_proj"), m.qLoraRank(), h) : null,
                lora ? vector(names.mla(layer, "q_a_layernorm"), m.qLoraRank()) : null,
                lora ? matrix(names.mla(layer, "q_b_proj"), qOut, m.qLoraRank()) : matrix(names.mla(layer, "q_proj"), qOut, h),
                matrix(names.mla(layer, "kv_a_proj_with_mqa"), m.kvLoraRank() + m.qkRopeHeadDim(), h),
                vector(names.mla(layer, "kv_a_layernorm"), m.kvLoraRank()),
                matrix(names.mla(layer, "kv_b_proj"), config.numHeads() * (m.qkNopeHeadDim() + m.vHeadDim()),
                        m.kvLoraRank()),
                matrix(names.mla(layer, "o_proj"), h, config.numHeads() * m.vHeadDim()));
    }

    /** Grouped-query attention weights of {@code layer} (Mixtral, Qwen2-MoE). */
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

    /**
     * DeepSeek-V3's {@code e_score_correction_bias} of {@code layer} as f32 ({@code [num_experts]}),
     * or null for an architecture that routes without one.
     */
    public MemorySegment routerBias(int layer) {
        requireMoeLayer(layer);
        return config.groupRouting() == null ? null : vector(names.routerBias(layer), config.numExperts());
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

    /**
     * The shared expert's sigmoid gate as a {@code [1, hidden]} matrix, or null without a shared
     * expert or with an ungated one (DeepSeek-V3).
     */
    public WeightMatrix sharedExpertGate(int layer) {
        requireMoeLayer(layer);
        return config.sharedExpertGated() ? matrix(names.sharedExpertGate(layer), 1, config.hiddenSize()) : null;
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
        WeightMatrix w = WeightMatrix.of(name, checkpoint.map(info), info.dtype(), rows, cols, this);
        mapped.add(w.byteSize());
        return w;
    }

    /**
     * The block scales of the FP8 or int8 weight {@code name}: its {@code <name>_scale_inv} tensor, F32,
     * {@code [ceil(rows / block_rows), ceil(cols / block_cols)]}, with the block size of
     * {@code quantization_config}; fails naming what is missing.
     */
    @Override
    public BlockScales scalesOf(String name, int rows, int cols) {
        BlockQuantization q = config.quantization();
        DType type = checkpoint.info(name).dtype();
        if (q == null) {
            throw new ModelFormatException(checkpoint.info(name).file() + ": tensor '" + name + "' is " + type + " but "
                    + "config.json has no quantization_config (weight_block_size)");
        }
        if (q.weights() != type) {
            throw new ModelFormatException(checkpoint.info(name).file() + ": tensor '" + name + "' is " + type
                    + " but config.json's quantization_config describes " + q.weights() + " weights");
        }
        String scaleName = TensorNames.scaleInv(name);
        TensorInfo info = checkpoint.info(scaleName, (rows + q.blockRows() - 1) / q.blockRows(),
                (cols + q.blockCols() - 1) / q.blockCols());
        if (info.dtype() != DType.F32) {
            throw new ModelFormatException(info.file() + ": tensor '" + scaleName + "' is " + info.dtype()
                    + "; block scales must be F32");
        }
        return new BlockScales(checkpoint.map(info), q.blockRows(), q.blockCols());
    }

    /** A 1-D tensor widened to an aligned f32 copy by its format's {@link WeightMatrix#copyRowTo}. */
    private MemorySegment vector(String name, int n) {
        TensorInfo info = checkpoint.info(name, n);
        if (info.dtype().isBlockQuantized()) {
            throw new ModelFormatException(info.file() + ": tensor '" + name + "' is " + info.dtype()
                    + "; 1-D tensors (norms, biases) must be F32, BF16 or F16");
        }
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
