package io.moecluster.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The shape of a MoE transformer, read from a Hugging Face {@code config.json}.
 *
 * <p>Field names follow the transformers conventions; where Mixtral and Qwen2-MoE name the same
 * thing differently (expert count, expert FFN width) both are mapped onto one field here.
 *
 * @param expertIntermediateSize FFN width of one routed expert
 * @param intermediateSize FFN width of a dense MLP layer (Qwen2-MoE {@code mlp_only_layers})
 * @param sharedExpertIntermediateSize 0 when the model has no shared expert
 * @param slidingWindow 0 when attention is not windowed
 * @param eosTokenIds one or more end-of-sequence ids, as {@code eos_token_id} may be a list
 * @param ropeScaling YaRN ({@code rope_scaling} of type yarn), or null for plain RoPE
 * @param mla multi-head latent attention (DeepSeek-V3), or null for grouped-query attention
 * @param groupRouting DeepSeek-V3's sigmoid group-limited expert choice, or null for softmax top-k
 * @param quantization FP8 block quantization ({@code quantization_config}), or null
 */
public record ModelConfig(
        Architecture architecture,
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int numExperts,
        int topK,
        int expertIntermediateSize,
        int intermediateSize,
        int sharedExpertIntermediateSize,
        boolean normTopKProb,
        boolean qkvBias,
        double rmsNormEps,
        double ropeTheta,
        int maxPositionEmbeddings,
        int slidingWindow,
        boolean tieWordEmbeddings,
        int bosTokenId,
        int[] eosTokenIds,
        int decoderSparseStep,
        int[] mlpOnlyLayers,
        RopeScaling ropeScaling,
        MlaConfig mla,
        GroupLimitedRouting groupRouting,
        BlockQuantization quantization) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        eosTokenIds = eosTokenIds.clone();
        mlpOnlyLayers = mlpOnlyLayers.clone();
    }

    /** A model with grouped-query attention, plain RoPE, softmax routing and no quantization. */
    public ModelConfig(Architecture architecture, int vocabSize, int hiddenSize, int numLayers, int numHeads,
                       int numKvHeads, int headDim, int numExperts, int topK, int expertIntermediateSize,
                       int intermediateSize, int sharedExpertIntermediateSize, boolean normTopKProb, boolean qkvBias,
                       double rmsNormEps, double ropeTheta, int maxPositionEmbeddings, int slidingWindow,
                       boolean tieWordEmbeddings, int bosTokenId, int[] eosTokenIds, int decoderSparseStep,
                       int[] mlpOnlyLayers) {
        this(architecture, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim, numExperts, topK,
                expertIntermediateSize, intermediateSize, sharedExpertIntermediateSize, normTopKProb, qkvBias,
                rmsNormEps, ropeTheta, maxPositionEmbeddings, slidingWindow, tieWordEmbeddings, bosTokenId,
                eosTokenIds, decoderSparseStep, mlpOnlyLayers, null, null, null, null);
    }

    /** This configuration with {@code rope_scaling} set (null: none). */
    public ModelConfig withRopeScaling(RopeScaling scaling) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim,
                numExperts, topK, expertIntermediateSize, intermediateSize, sharedExpertIntermediateSize, normTopKProb,
                qkvBias, rmsNormEps, ropeTheta, maxPositionEmbeddings, slidingWindow, tieWordEmbeddings, bosTokenId,
                eosTokenIds, decoderSparseStep, mlpOnlyLayers, scaling, mla, groupRouting, quantization);
    }

    /** This configuration with {@code quantization_config} set (null: none). */
    public ModelConfig withQuantization(BlockQuantization q) {
        return new ModelConfig(architecture, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim,
                numExperts, topK, expertIntermediateSize, intermediateSize, sharedExpertIntermediateSize, normTopKProb,
                qkvBias, rmsNormEps, ropeTheta, maxPositionEmbeddings, slidingWindow, tieWordEmbeddings, bosTokenId,
                eosTokenIds, decoderSparseStep, mlpOnlyLayers, ropeScaling, mla, groupRouting, q);
    }

    /**
     * This configuration resized, for benchmarks at other sizes than a preset's; 0 keeps a size.
     * The head count stays, so grouped-query heads get {@code hidden / heads} dimensions (MLA's head
     * dimensions are their own and stay). {@code expertFfn} is Mixtral's {@code intermediate_size}
     * (its one FFN width) and the routed experts' {@code moe_intermediate_size} elsewhere; DeepSeek's
     * shared experts keep their count, so their width follows. DeepSeek's leading dense layers stay
     * while the model has more layers than them; Qwen2-MoE's {@code mlp_only_layers} beyond the
     * new depth are dropped.
     *
     * @throws IllegalArgumentException naming the size that does not fit
     */
    public ModelConfig withSizes(int hidden, int expertFfn, int layers) {
        if (hidden < 0 || expertFfn < 0 || layers < 0) {
            throw new IllegalArgumentException("sizes must be >= 0 (0 keeps the preset's): hidden " + hidden
                    + ", intermediate " + expertFfn + ", layers " + layers);
        }
        int newHidden = hidden == 0 ? hiddenSize : hidden;
        int newLayers = layers == 0 ? numLayers : layers;
        int newExpertFfn = expertFfn == 0 ? expertIntermediateSize : expertFfn;
        int newHeadDim = headDim;
        if (mla == null && newHidden != hiddenSize) {
            if (newHidden % numHeads != 0 || (newHidden / numHeads) % 2 != 0) {
                throw new IllegalArgumentException("hidden size " + newHidden + " must be a multiple of 2 x "
                        + numHeads + " (the heads, each with an even head_dim for RoPE)");
            }
            newHeadDim = newHidden / numHeads;
        }
        int newDenseFfn = architecture == Architecture.MIXTRAL ? newExpertFfn : intermediateSize;
        int newSharedFfn = architecture == Architecture.DEEPSEEK_V3
                ? sharedExpertIntermediateSize / expertIntermediateSize * newExpertFfn : sharedExpertIntermediateSize;
        int[] newMlpOnly = Arrays.stream(mlpOnlyLayers).filter(l -> l < newLayers).toArray();
        if (architecture == Architecture.DEEPSEEK_V3 && newMlpOnly.length >= newLayers) {
            throw new IllegalArgumentException("layers " + newLayers + " leaves no MoE layer after the "
                    + mlpOnlyLayers.length + " dense one(s) (first_k_dense_replace)");
        }
        return new ModelConfig(architecture, vocabSize, newHidden, newLayers, numHeads, numKvHeads, newHeadDim,
                numExperts, topK, newExpertFfn, newDenseFfn, newSharedFfn, normTopKProb, qkvBias, rmsNormEps,
                ropeTheta, maxPositionEmbeddings, slidingWindow, tieWordEmbeddings, bosTokenId, eosTokenIds,
                decoderSparseStep, newMlpOnly, ropeScaling, mla, groupRouting, quantization);
    }

    /** Reads {@code dir/config.json}. */
    public static ModelConfig load(Path dir) {
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": not found (is " + dir + " a Hugging Face model directory?)");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot parse JSON: " + e.getMessage(), e);
        }
        return parse(root, file.toString());
    }

    /** Parses a config.json tree; {@code source} names it in error messages. */
    public static ModelConfig parse(JsonNode root, String source) {
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(source + ": expected a JSON object");
        }
        Fields f = new Fields(root, source);
        Architecture arch = Architecture.fromModelType(f.requiredText("model_type"), source);
        String act = f.optionalText("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new ModelFormatException(source + ": hidden_act '" + act + "' is not supported (only silu)");
        }
        RopeScaling ropeScaling = parseRopeScaling(root.get("rope_scaling"), source);
        BlockQuantization quantization = parseQuantization(root.get("quantization_config"), source);

        int hidden = f.positiveInt("hidden_size");
        int heads = f.positiveInt("num_attention_heads");
        int kvHeads;
        int headDim;
        MlaConfig mla = null;
        if (arch == Architecture.DEEPSEEK_V3) {
            mla = new MlaConfig(f.nullableNonNegativeInt("q_lora_rank", "null for queries without compression"),
                    f.positiveInt("kv_lora_rank"), f.positiveInt("qk_nope_head_dim"), f.positiveInt("qk_rope_head_dim"),
                    f.positiveInt("v_head_dim"), f.optionalBoolean("rope_interleave", true));
            if (mla.qkRopeHeadDim() % 2 != 0) {
                throw new ModelFormatException(source + ": qk_rope_head_dim " + mla.qkRopeHeadDim()
                        + " must be even for RoPE");
            }
            if (f.optionalBoolean("attention_bias", false)) {
                throw new ModelFormatException(source + ": attention_bias true is not supported for deepseek_v3"
                        + " (multi-head latent attention without biases)");
            }
            // Every head has its own keys and values, made from the one latent.
            kvHeads = heads;
            headDim = mla.qkHeadDim();
        } else {
            kvHeads = f.optionalPositiveInt("num_key_value_heads", heads);
            headDim = f.optionalPositiveInt("head_dim", hidden / heads);
            if (heads % kvHeads != 0) {
                throw new ModelFormatException(source + ": num_attention_heads " + heads
                        + " is not a multiple of num_key_value_heads " + kvHeads);
            }
            if (headDim % 2 != 0) {
                throw new ModelFormatException(source + ": head_dim " + headDim + " must be even for RoPE");
            }
        }

        int numExperts;
        int expertFfn;
        int denseFfn;
        int sharedFfn;
        boolean normTopK;
        boolean qkvBias;
        int slidingWindow;
        int sparseStep;
        int[] mlpOnly;
        GroupLimitedRouting groupRouting = null;
        switch (arch) {
            case MIXTRAL -> {
                numExperts = f.positiveInt("num_local_experts");
                expertFfn = f.positiveInt("intermediate_size");
                denseFfn = expertFfn;
                sharedFfn = 0;
                normTopK = true;
                qkvBias = f.optionalBoolean("attention_bias", false);
                slidingWindow = f.optionalNonNegativeInt("sliding_window", 0);
                sparseStep = 1;
                mlpOnly = new int[0];
            }
            case QWEN2_MOE -> {
                numExperts = f.positiveInt("num_experts");
                expertFfn = f.positiveInt("moe_intermediate_size");
                denseFfn = f.optionalPositiveInt("intermediate_size", expertFfn);
                sharedFfn = f.optionalNonNegativeInt("shared_expert_intermediate_size", 0);
                normTopK = f.optionalBoolean("norm_topk_prob", false);
                qkvBias = f.optionalBoolean("qkv_bias", true);
                slidingWindow = f.optionalBoolean("use_sliding_window", false)
                        ? f.optionalNonNegativeInt("sliding_window", 0) : 0;
                sparseStep = f.optionalPositiveInt("decoder_sparse_step", 1);
                mlpOnly = f.optionalIntArray("mlp_only_layers");
            }
            case DEEPSEEK_V3 -> {
                numExperts = f.positiveInt("n_routed_experts");
                expertFfn = f.positiveInt("moe_intermediate_size");
                denseFfn = f.positiveInt("intermediate_size");
                sharedFfn = f.optionalNonNegativeInt("n_shared_experts", 1) * expertFfn;
                normTopK = f.optionalBoolean("norm_topk_prob", true);
                qkvBias = false;
                slidingWindow = 0;
                sparseStep = 1;
                f.requireText("scoring_func", "sigmoid", "sigmoid");
                f.requireText("topk_method", "noaux_tc", "noaux_tc");
                f.requireInt("moe_layer_freq", 1, 1);
                int firstDense = f.optionalNonNegativeInt("first_k_dense_replace", 3);
                mlpOnly = new int[firstDense];
                for (int l = 0; l < firstDense; l++) {
                    mlpOnly[l] = l;
                }
                groupRouting = new GroupLimitedRouting(f.optionalPositiveInt("n_group", 8),
                        f.optionalPositiveInt("topk_group", 4), f.optionalPositiveDouble("routed_scaling_factor", 2.5));
            }
            default -> throw new IllegalStateException(arch.toString());
        }
        int topK = f.positiveInt("num_experts_per_tok");
        if (topK > numExperts) {
            throw new ModelFormatException(source + ": num_experts_per_tok " + topK
                    + " exceeds the number of experts " + numExperts);
        }
        if (groupRouting != null) {
            checkGroups(groupRouting, numExperts, topK, source);
        }
        int numLayers = f.positiveInt("num_hidden_layers");
        if (arch == Architecture.DEEPSEEK_V3 && mlpOnly.length > numLayers) {
            throw new ModelFormatException(source + ": first_k_dense_replace " + mlpOnly.length
                    + " exceeds num_hidden_layers " + numLayers);
        }
        for (int layer : mlpOnly) {
            if (layer < 0 || layer >= numLayers) {
                throw new ModelFormatException(source + ": mlp_only_layers names layer " + layer
                        + " but the model has " + numLayers);
            }
        }
        return new ModelConfig(arch,
                f.positiveInt("vocab_size"), hidden, numLayers, heads, kvHeads, headDim,
                numExperts, topK, expertFfn, denseFfn, sharedFfn, normTopK, qkvBias,
                f.optionalPositiveDouble("rms_norm_eps", 1e-6),
                f.optionalPositiveDouble("rope_theta", 10000.0),
                f.optionalPositiveInt("max_position_embeddings", 4096),
                slidingWindow,
                f.optionalBoolean("tie_word_embeddings", false),
                f.optionalNonNegativeInt("bos_token_id", 1),
                f.optionalIntOrArray("eos_token_id", 2),
                sparseStep, mlpOnly, ropeScaling, mla, groupRouting, quantization);
    }

    private static void checkGroups(GroupLimitedRouting g, int experts, int topK, String source) {
        if (experts % g.nGroup() != 0) {
            throw new ModelFormatException(source + ": n_group " + g.nGroup() + " does not divide n_routed_experts "
                    + experts);
        }
        int perGroup = experts / g.nGroup();
        if (perGroup < 2) {
            throw new ModelFormatException(source + ": n_group " + g.nGroup() + " leaves " + perGroup
                    + " expert per group; groups are scored by their two best experts");
        }
        if (g.topkGroup() > g.nGroup()) {
            throw new ModelFormatException(source + ": topk_group " + g.topkGroup() + " exceeds n_group " + g.nGroup());
        }
        if (topK > g.topkGroup() * perGroup) {
            throw new ModelFormatException(source + ": num_experts_per_tok " + topK + " exceeds the "
                    + g.topkGroup() * perGroup + " experts of topk_group " + g.topkGroup() + " groups");
        }
    }

    /** {@code rope_scaling}: null, or YaRN; any other type is refused naming it. */
    static RopeScaling parseRopeScaling(JsonNode n, String source) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isObject()) {
            throw new ModelFormatException(source + ": rope_scaling must be an object or null, got " + n);
        }
        Fields f = new Fields(n, source, "rope_scaling.");
        JsonNode type = n.hasNonNull("rope_type") ? n.get("rope_type") : n.get("type");
        String typeKey = n.hasNonNull("rope_type") ? "rope_scaling.rope_type" : "rope_scaling.type";
        if (type == null || type.isNull()) {
            throw new ModelFormatException(source + ": rope_scaling " + n + " names no type (rope_type or type)");
        }
        if (type.asText().equals("default")) {
            return null;
        }
        if (!type.asText().equals("yarn")) {
            throw new ModelFormatException(source + ": " + typeKey + " '" + type.asText()
                    + "' is not supported (only yarn)");
        }
        JsonNode factor = n.get("factor");
        if (factor == null || !factor.isNumber() || !(factor.asDouble() >= 1.0)) {
            throw new ModelFormatException(source + ": rope_scaling.factor must be a number >= 1 for yarn, got "
                    + (factor == null ? "nothing" : factor));
        }
        return new RopeScaling(factor.asDouble(),
                f.optionalNonNegativeInt("original_max_position_embeddings", 0),
                f.optionalPositiveDouble("beta_fast", 32.0),
                f.optionalPositiveDouble("beta_slow", 1.0),
                f.optionalNonNegativeDouble("mscale", 0.0),
                f.optionalNonNegativeDouble("mscale_all_dim", 0.0),
                f.optionalPositiveDouble("attention_factor", Double.NaN),
                f.optionalBoolean("truncate", true));
    }

    /** {@code quantization_config}: null, or FP8 e4m3 with block scales; anything else is refused naming the key. */
    static BlockQuantization parseQuantization(JsonNode n, String source) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isObject()) {
            throw new ModelFormatException(source + ": quantization_config must be an object, got " + n);
        }
        Fields f = new Fields(n, source, "quantization_config.");
        JsonNode method = n.get("quant_method");
        if (method != null && method.isTextual() && method.asText().equals(BlockQuantization.INT8_METHOD)) {
            f.requireText("fmt", BlockQuantization.INT8_FMT, BlockQuantization.INT8_FMT);
            JsonNode block = n.get("weight_block_size");
            if (block == null || !block.isArray() || block.size() != 2 || block.get(0).asInt() != BlockQuantization.INT8.blockRows()
                    || block.get(1).asInt() != BlockQuantization.INT8.blockCols()) {
                throw new ModelFormatException(source + ": quantization_config.weight_block_size of an int8 model must be ["
                        + BlockQuantization.INT8.blockRows() + ", " + BlockQuantization.INT8.blockCols() + "], got "
                        + (block == null ? "nothing" : block));
            }
            return BlockQuantization.INT8;
        }
        if (method == null || !method.isTextual() || !method.asText().equals("fp8")) {
            throw new ModelFormatException(source + ": quantization_config.quant_method "
                    + (method == null ? "is missing" : method + " is not supported") + " (only fp8 or int8)");
        }
        f.requireText("fmt", "e4m3", "e4m3");
        f.requireText("activation_scheme", "dynamic", "dynamic");
        JsonNode block = n.get("weight_block_size");
        if (block == null || !block.isArray() || block.size() != 2 || !block.get(0).canConvertToInt()
                || !block.get(1).canConvertToInt() || block.get(0).asInt() < 1 || block.get(1).asInt() < 1) {
            throw new ModelFormatException(source + ": quantization_config.weight_block_size must be two positive"
                    + " integers [rows, cols], got " + (block == null ? "nothing" : block));
        }
        return new BlockQuantization(block.get(0).asInt(), block.get(1).asInt());
    }

    /** Whether layer {@code layer} has a MoE block (true) or a dense MLP (false), as in transformers. */
    public boolean isMoeLayer(int layer) {
        for (int l : mlpOnlyLayers) {
            if (l == layer) {
                return false;
            }
        }
        return numExperts > 0 && (layer + 1) % decoderSparseStep == 0;
    }

    public boolean hasSharedExpert() {
        return sharedExpertIntermediateSize > 0;
    }

    /**
     * Whether the shared expert's output is scaled by a sigmoid gate of its own (Qwen2-MoE's
     * {@code shared_expert_gate}); DeepSeek-V3's shared experts are added as they are (weight 1).
     */
    public boolean sharedExpertGated() {
        return hasSharedExpert() && architecture == Architecture.QWEN2_MOE;
    }

    /** Whether attention is multi-head latent attention (DeepSeek-V3) rather than grouped-query. */
    public boolean isMla() {
        return mla != null;
    }

    /** The dimensions RoPE turns in one head: {@code qk_rope_head_dim} for MLA, else the whole head. */
    public int ropeDim() {
        return mla != null ? mla.qkRopeHeadDim() : headDim;
    }

    /**
     * Floats the KV cache stores per token and layer: {@code 2 x kv_heads x head_dim} for grouped-query
     * attention, {@code kv_lora_rank + qk_rope_head_dim} (the latent and the shared rope key) for MLA.
     */
    public int kvCacheFloatsPerToken() {
        return mla != null ? mla.cacheFloatsPerToken() : 2 * kvDim();
    }

    /**
     * What an uncompressed cache would store per token and layer: keys and values of every KV head
     * ({@code heads x (qk_head_dim + v_head_dim)} for MLA: 128 x 320 for DeepSeek-V3, 2 x kv_dim otherwise).
     */
    public int uncompressedKvFloatsPerToken() {
        return mla != null ? numHeads * (mla.qkHeadDim() + mla.vHeadDim()) : 2 * kvDim();
    }

    /**
     * The expert id of the shared expert on the data plane and in placements: one past the routed
     * experts ({@code num_experts}), whether or not this model has one.
     */
    public int sharedExpertId() {
        return numExperts;
    }

    /** Expert ids a MoE layer dispatches to: the routed experts, plus the shared expert where there is one. */
    public int expertSlots() {
        return numExperts + (hasSharedExpert() ? 1 : 0);
    }

    /**
     * The architecture in words, for {@code GetModelInfo} and logs, e.g. "deepseek_v3: multi-head
     * latent attention (16 heads, q LoRA 384, latent 256 + rope key 32 cached), 64 routed experts,
     * top-6 by sigmoid group-limited routing (8 groups, 4 kept, scaling 2.5), a shared expert
     * (FFN 512, ungated), first 1 layer dense, YaRN x40".
     */
    public String describeArchitecture() {
        StringBuilder s = new StringBuilder(architecture.modelType()).append(": ");
        if (mla != null) {
            s.append("multi-head latent attention (").append(numHeads).append(" heads, q LoRA ")
                    .append(mla.qLoraRank() > 0 ? Integer.toString(mla.qLoraRank()) : "none").append(", latent ")
                    .append(mla.kvLoraRank()).append(" + rope key ").append(mla.qkRopeHeadDim()).append(" cached)");
        } else {
            s.append("grouped-query attention (").append(numHeads).append(" heads, ").append(numKvHeads)
                    .append(" KV heads x ").append(headDim).append(')');
        }
        s.append(", ").append(numExperts).append(" routed experts, top-").append(topK);
        if (groupRouting != null) {
            s.append(" by sigmoid group-limited routing (").append(groupRouting.nGroup()).append(" groups, ")
                    .append(groupRouting.topkGroup()).append(" kept, scaling ").append(groupRouting.routedScalingFactor())
                    .append(')');
        } else {
            s.append(" by softmax").append(normTopKProb ? ", renormalised" : "");
        }
        if (hasSharedExpert()) {
            s.append(", a shared expert (FFN ").append(sharedExpertIntermediateSize)
                    .append(sharedExpertGated() ? ", sigmoid gate)" : ", ungated)");
        }
        if (mlpOnlyLayers.length > 0) {
            s.append(", ").append(mlpOnlyLayers.length).append(mlpOnlyLayers.length == 1 ? " layer" : " layers")
                    .append(" dense");
        }
        if (ropeScaling != null) {
            s.append(", YaRN x").append(ropeScaling.effectiveFactor(maxPositionEmbeddings));
        }
        if (quantization != null) {
            s.append(quantization.isInt8() ? ", int8 weights in " : ", FP8 e4m3 weights in ").append(quantization.blockRows()).append('x')
                    .append(quantization.blockCols()).append(" blocks");
        }
        return s.toString();
    }

    public int queryDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    public boolean isEos(int token) {
        for (int id : eosTokenIds) {
            if (id == token) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int[] eosTokenIds() {
        return eosTokenIds.clone();
    }

    @Override
    public int[] mlpOnlyLayers() {
        return mlpOnlyLayers.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ModelConfig c && toString().equals(c.toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }

    @Override
    public String toString() {
        return "ModelConfig[" + architecture.modelType() + ", vocab=" + vocabSize + ", hidden=" + hiddenSize
                + ", layers=" + numLayers + ", heads=" + numHeads + "/" + numKvHeads + "x" + headDim
                + ", experts=" + numExperts + " top" + topK + " ffn=" + expertIntermediateSize
                + ", dense_ffn=" + intermediateSize + ", shared_ffn=" + sharedExpertIntermediateSize
                + ", norm_topk=" + normTopKProb + ", qkv_bias=" + qkvBias + ", eps=" + rmsNormEps
                + ", rope_theta=" + ropeTheta + ", max_pos=" + maxPositionEmbeddings
                + ", window=" + slidingWindow + ", tied=" + tieWordEmbeddings + ", bos=" + bosTokenId
                + ", eos=" + Arrays.toString(eosTokenIds) + ", sparse_step=" + decoderSparseStep
                + ", mlp_only=" + Arrays.toString(mlpOnlyLayers)
                + (ropeScaling == null ? "" : ", rope_scaling=" + ropeScaling)
                + (mla == null ? "" : ", " + mla)
                + (groupRouting == null ? "" : ", " + groupRouting)
                + (quantization == null ? "" : ", " + quantization) + "]";
    }

    /** Typed, validated field access with errors that name the field and the file. */
    private record Fields(JsonNode root, String source, String prefix) {
        Fields(JsonNode root, String source) {
            this(root, source, "");
        }

        /** The key as an error names it, e.g. {@code rope_scaling.beta_fast}. */
        String key(String name) {
            return prefix + name;
        }

        private JsonNode present(String name) {
            JsonNode n = root.get(name);
            return n == null || n.isNull() ? null : n;
        }

        String requiredText(String name) {
            JsonNode n = present(name);
            if (n == null || !n.isTextual()) {
                throw new ModelFormatException(source + ": missing or non-string field '" + key(name) + "'");
            }
            return n.asText();
        }

        String optionalText(String name, String dflt) {
            JsonNode n = present(name);
            return n == null ? dflt : n.asText();
        }

        int positiveInt(String name) {
            JsonNode n = present(name);
            if (n == null) {
                throw new ModelFormatException(source + ": missing field '" + key(name) + "'");
            }
            return checkInt(name, n, 1);
        }

        int optionalPositiveInt(String name, int dflt) {
            JsonNode n = present(name);
            return n == null ? dflt : checkInt(name, n, 1);
        }

        int optionalNonNegativeInt(String name, int dflt) {
            JsonNode n = present(name);
            return n == null ? dflt : checkInt(name, n, 0);
        }

        private int checkInt(String name, JsonNode n, int min) {
            if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < min) {
                throw new ModelFormatException(source + ": field '" + key(name) + "' must be an integer >= " + min
                        + ", got " + n);
            }
            return n.asInt();
        }

        /** An integer that must be present, null allowed (returned as 0); {@code nullMeans} explains null. */
        int nullableNonNegativeInt(String name, String nullMeans) {
            JsonNode n = root.get(name);
            if (n == null) {
                throw new ModelFormatException(source + ": missing field '" + key(name) + "' (" + nullMeans + ")");
            }
            return n.isNull() ? 0 : checkInt(name, n, 1);
        }

        /** A string that, when present, must be {@code allowed}; absent means {@code dflt} (null: required). */
        void requireText(String name, String dflt, String allowed) {
            JsonNode n = present(name);
            if (n == null) {
                if (dflt == null) {
                    throw new ModelFormatException(source + ": missing field '" + key(name) + "' (only " + allowed
                            + " is supported)");
                }
                return;
            }
            if (!n.isTextual() || !n.asText().equals(allowed)) {
                throw new ModelFormatException(source + ": " + key(name) + " " + n + " is not supported (only "
                        + allowed + ")");
            }
        }

        /** An integer that, when present, must be {@code allowed}. */
        void requireInt(String name, int dflt, int allowed) {
            JsonNode n = present(name);
            int v = n == null ? dflt : checkInt(name, n, 0);
            if (v != allowed) {
                throw new ModelFormatException(source + ": " + key(name) + " " + v + " is not supported (only "
                        + allowed + ")");
            }
        }

        double optionalNonNegativeDouble(String name, double dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return dflt;
            }
            if (!n.isNumber() || !(n.asDouble() >= 0)) {
                throw new ModelFormatException(source + ": field '" + key(name) + "' must be a number >= 0, got " + n);
            }
            return n.asDouble();
        }

        double optionalPositiveDouble(String name, double dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return dflt;
            }
            if (!n.isNumber() || !(n.asDouble() > 0)) {
                throw new ModelFormatException(source + ": field '" + key(name) + "' must be a positive number, got " + n);
            }
            return n.asDouble();
        }

        boolean optionalBoolean(String name, boolean dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return dflt;
            }
            if (!n.isBoolean()) {
                throw new ModelFormatException(source + ": field '" + key(name) + "' must be true or false, got " + n);
            }
            return n.asBoolean();
        }

        int[] optionalIntArray(String name) {
            JsonNode n = present(name);
            if (n == null) {
                return new int[0];
            }
            if (!n.isArray()) {
                throw new ModelFormatException(source + ": field '" + key(name) + "' must be a list of integers, got " + n);
            }
            int[] out = new int[n.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = checkInt(name, n.get(i), 0);
            }
            return out;
        }

        int[] optionalIntOrArray(String name, int dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return new int[] {dflt};
            }
            if (n.isArray()) {
                int[] ids = optionalIntArray(name);
                if (ids.length == 0) {
                    throw new ModelFormatException(source + ": field '" + key(name) + "' is an empty list");
                }
                return ids;
            }
            return new int[] {checkInt(name, n, 0)};
        }
    }
}
