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
        int[] mlpOnlyLayers) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        eosTokenIds = eosTokenIds.clone();
        mlpOnlyLayers = mlpOnlyLayers.clone();
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
        JsonNode ropeScaling = root.get("rope_scaling");
        if (ropeScaling != null && !ropeScaling.isNull()) {
            throw new ModelFormatException(source + ": rope_scaling " + ropeScaling + " is not supported yet");
        }

        int hidden = f.positiveInt("hidden_size");
        int heads = f.positiveInt("num_attention_heads");
        int kvHeads = f.optionalPositiveInt("num_key_value_heads", heads);
        int headDim = f.optionalPositiveInt("head_dim", hidden / heads);
        if (heads % kvHeads != 0) {
            throw new ModelFormatException(source + ": num_attention_heads " + heads
                    + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        if (headDim % 2 != 0) {
            throw new ModelFormatException(source + ": head_dim " + headDim + " must be even for RoPE");
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
            default -> throw new IllegalStateException(arch.toString());
        }
        int topK = f.positiveInt("num_experts_per_tok");
        if (topK > numExperts) {
            throw new ModelFormatException(source + ": num_experts_per_tok " + topK
                    + " exceeds the number of experts " + numExperts);
        }
        int numLayers = f.positiveInt("num_hidden_layers");
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
                sparseStep, mlpOnly);
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
                + ", mlp_only=" + Arrays.toString(mlpOnlyLayers) + "]";
    }

    /** Typed, validated field access with errors that name the field and the file. */
    private record Fields(JsonNode root, String source) {
        private JsonNode present(String name) {
            JsonNode n = root.get(name);
            return n == null || n.isNull() ? null : n;
        }

        String requiredText(String name) {
            JsonNode n = present(name);
            if (n == null || !n.isTextual()) {
                throw new ModelFormatException(source + ": missing or non-string field '" + name + "'");
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
                throw new ModelFormatException(source + ": missing field '" + name + "'");
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
                throw new ModelFormatException(source + ": field '" + name + "' must be an integer >= " + min
                        + ", got " + n);
            }
            return n.asInt();
        }

        double optionalPositiveDouble(String name, double dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return dflt;
            }
            if (!n.isNumber() || !(n.asDouble() > 0)) {
                throw new ModelFormatException(source + ": field '" + name + "' must be a positive number, got " + n);
            }
            return n.asDouble();
        }

        boolean optionalBoolean(String name, boolean dflt) {
            JsonNode n = present(name);
            if (n == null) {
                return dflt;
            }
            if (!n.isBoolean()) {
                throw new ModelFormatException(source + ": field '" + name + "' must be true or false, got " + n);
            }
            return n.asBoolean();
        }

        int[] optionalIntArray(String name) {
            JsonNode n = present(name);
            if (n == null) {
                return new int[0];
            }
            if (!n.isArray()) {
                throw new ModelFormatException(source + ": field '" + name + "' must be a list of integers, got " + n);
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
                    throw new ModelFormatException(source + ": field '" + name + "' is an empty list");
                }
                return ids;
            }
            return new int[] {checkInt(name, n, 0)};
        }
    }
}
