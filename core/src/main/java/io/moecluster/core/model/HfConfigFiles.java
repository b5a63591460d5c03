package io.moecluster.core.model;

import io.moecluster.core.io.PythonStyleJson;

import io.moecluster.core.safetensors.DType;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JSON side files of a Hugging Face model directory for a {@link ModelConfig}, with the keys
 * transformers uses for each architecture (the inverse of {@link ModelConfig#parse}).
 */
final class HfConfigFiles {
    private HfConfigFiles() {}

    /** {@code config.json}; {@code dtype} becomes {@code torch_dtype}. */
    static String config(ModelConfig c, DType dtype) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("vocab_size", c.vocabSize());
        m.put("hidden_size", c.hiddenSize());
        m.put("num_hidden_layers", c.numLayers());
        m.put("num_attention_heads", c.numHeads());
        m.put("num_key_value_heads", c.numKvHeads());
        if (c.headDim() != c.hiddenSize() / c.numHeads()) {
            m.put("head_dim", c.headDim());
        }
        m.put("rms_norm_eps", c.rmsNormEps());
        m.put("rope_theta", c.ropeTheta());
        m.put("max_position_embeddings", c.maxPositionEmbeddings());
        m.put("tie_word_embeddings", c.tieWordEmbeddings());
        m.put("bos_token_id", c.bosTokenId());
        m.put("eos_token_id", eos(c));
        m.put("hidden_act", "silu");
        m.put("torch_dtype", torchDtype(dtype));
        m.put("num_experts_per_tok", c.topK());
        m.put("model_type", c.architecture().modelType());
        Integer window = c.slidingWindow() > 0 ? c.slidingWindow() : null;
        switch (c.architecture()) {
            case MIXTRAL -> {
                if (c.intermediateSize() != c.expertIntermediateSize() || c.hasSharedExpert()
                        || !c.normTopKProb() || c.decoderSparseStep() != 1 || c.mlpOnlyLayers().length > 0) {
                    throw new IllegalArgumentException("Mixtral has one FFN size, renormalised top-k, no shared"
                            + " expert and no dense layers; cannot write " + c);
                }
                m.put("architectures", List.of("MixtralForCausalLM"));
                m.put("intermediate_size", c.expertIntermediateSize());
                m.put("num_local_experts", c.numExperts());
                m.put("sliding_window", window);
                if (c.qkvBias()) {
                    m.put("attention_bias", true);
                }
                m.put("router_aux_loss_coef", 0.02);
            }
            case QWEN2_MOE -> {
                m.put("architectures", List.of("Qwen2MoeForCausalLM"));
                m.put("intermediate_size", c.intermediateSize());
                m.put("moe_intermediate_size", c.expertIntermediateSize());
                m.put("num_experts", c.numExperts());
                m.put("norm_topk_prob", c.normTopKProb());
                m.put("decoder_sparse_step", c.decoderSparseStep());
                m.put("mlp_only_layers", Arrays.stream(c.mlpOnlyLayers()).boxed().toList());
                m.put("use_sliding_window", window != null);
                m.put("sliding_window", window);
                m.put("shared_expert_intermediate_size", c.sharedExpertIntermediateSize());
                m.put("qkv_bias", c.qkvBias());
            }
            case DEEPSEEK_V3 -> {
                return deepseekV3(c, dtype);
            }
        }
        if (c.ropeScaling() != null) {
            m.put("rope_scaling", ropeScaling(c.ropeScaling()));
        }
        putQuantization(m, c);
        return PythonStyleJson.pretty(m);
    }

    /** DeepSeek-V3's {@code config.json}, its keys in the order of the model's own file. */
    private static String deepseekV3(ModelConfig c, DType dtype) {
        int[] dense = c.mlpOnlyLayers();
        for (int l = 0; l < dense.length; l++) {
            if (dense[l] != l) {
                throw new IllegalArgumentException("DeepSeek-V3's dense layers are the first ones"
                        + " (first_k_dense_replace); cannot write " + c);
            }
        }
        if (c.sharedExpertIntermediateSize() % c.expertIntermediateSize() != 0 || c.decoderSparseStep() != 1
                || c.slidingWindow() != 0 || c.qkvBias() || c.groupRouting() == null || c.mla() == null) {
            throw new IllegalArgumentException("DeepSeek-V3 has MLA, n_shared_experts whole experts, MoE in every"
                    + " layer after the dense ones, no window, no biases and group-limited routing; cannot write " + c);
        }
        MlaConfig mla = c.mla();
        GroupLimitedRouting g = c.groupRouting();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("DeepseekV3ForCausalLM"));
        m.put("model_type", c.architecture().modelType());
        m.put("vocab_size", c.vocabSize());
        m.put("hidden_size", c.hiddenSize());
        m.put("intermediate_size", c.intermediateSize());
        m.put("moe_intermediate_size", c.expertIntermediateSize());
        m.put("num_hidden_layers", c.numLayers());
        m.put("num_attention_heads", c.numHeads());
        m.put("num_key_value_heads", c.numKvHeads());
        m.put("n_shared_experts", c.sharedExpertIntermediateSize() / c.expertIntermediateSize());
        m.put("n_routed_experts", c.numExperts());
        m.put("routed_scaling_factor", g.routedScalingFactor());
        m.put("kv_lora_rank", mla.kvLoraRank());
        m.put("q_lora_rank", mla.qLoraRank() > 0 ? mla.qLoraRank() : null);
        m.put("qk_rope_head_dim", mla.qkRopeHeadDim());
        m.put("v_head_dim", mla.vHeadDim());
        m.put("qk_nope_head_dim", mla.qkNopeHeadDim());
        m.put("n_group", g.nGroup());
        m.put("topk_group", g.topkGroup());
        m.put("num_experts_per_tok", c.topK());
        m.put("first_k_dense_replace", dense.length);
        m.put("moe_layer_freq", 1);
        m.put("norm_topk_prob", c.normTopKProb());
        m.put("scoring_func", "sigmoid");
        m.put("topk_method", "noaux_tc");
        m.put("hidden_act", "silu");
        m.put("max_position_embeddings", c.maxPositionEmbeddings());
        m.put("rms_norm_eps", c.rmsNormEps());
        m.put("rope_theta", c.ropeTheta());
        m.put("rope_scaling", ropeScaling(c.ropeScaling()));
        if (!mla.ropeInterleave()) {
            m.put("rope_interleave", false);
        }
        m.put("attention_bias", false);
        m.put("attention_dropout", 0.0);
        m.put("tie_word_embeddings", c.tieWordEmbeddings());
        m.put("num_nextn_predict_layers", 0);
        m.put("bos_token_id", c.bosTokenId());
        m.put("eos_token_id", eos(c));
        m.put("use_cache", true);
        m.put("torch_dtype", torchDtype(dtype));
        putQuantization(m, c);
        return PythonStyleJson.pretty(m);
    }

    private static void putQuantization(Map<String, Object> m, ModelConfig c) {
        if (c.quantization() != null && c.quantization().isInt8()) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("quant_method", BlockQuantization.INT8_METHOD);
            q.put("fmt", BlockQuantization.INT8_FMT);
            q.put("weight_block_size", List.of(c.quantization().blockRows(), c.quantization().blockCols()));
            m.put("quantization_config", q);
        } else if (c.quantization() != null) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("activation_scheme", "dynamic");
            q.put("fmt", "e4m3");
            q.put("quant_method", "fp8");
            q.put("weight_block_size", List.of(c.quantization().blockRows(), c.quantization().blockCols()));
            m.put("quantization_config", q);
        }
    }
    /** {@code rope_scaling} as transformers writes it: null, or the YaRN keys that differ from their defaults. */
    private static Object ropeScaling(RopeScaling r) {
        if (r == null) {
            return null;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "yarn");
        m.put("factor", r.factor());
        if (r.originalMaxPositionEmbeddings() > 0) {
            m.put("original_max_position_embeddings", r.originalMaxPositionEmbeddings());
        }
        m.put("beta_fast", r.betaFast());
        m.put("beta_slow", r.betaSlow());
        if (r.mscale() != 0) {
            m.put("mscale", r.mscale());
        }
        if (r.mscaleAllDim() != 0) {
            m.put("mscale_all_dim", r.mscaleAllDim());
        }
        if (!Double.isNaN(r.attentionFactorOverride())) {
            m.put("attention_factor", r.attentionFactorOverride());
        }
        if (!r.truncate()) {
            m.put("truncate", false);
        }
        return m;
    }

    static String generationConfig(ModelConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bos_token_id", c.bosTokenId());
        m.put("eos_token_id", eos(c));
        m.put("do_sample", false);
        return PythonStyleJson.pretty(m);
    }

    /**
     * The chat template random models ship (in {@code tokenizer_config.json}, as transformers saves
     * one): Mixtral's [INST] turns, a [SYS] block for system messages, each assistant turn ended by
     * EOS. Enough for the demo to chat; the text is random anyway.
     */
    static final String CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}"
            + "{% if message['role'] == 'system' %}{{ '[SYS] ' + message['content'] + ' [/SYS]' }}"
            + "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
            + "{% else %}{{ raise_exception('Unknown role: ' + message['role']) }}{% endif %}{% endfor %}";

    /** For transformers' {@code AutoTokenizer}: the fast tokenizer from tokenizer.json, with its special tokens and chat template. */
    static String tokenizerConfig(ModelConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokenizer_class", "PreTrainedTokenizerFast");
        m.put("unk_token", "<unk>");
        m.put("bos_token", "<s>");
        m.put("eos_token", "</s>");
        m.put("add_bos_token", true);
        m.put("add_eos_token", false);
        m.put("clean_up_tokenization_spaces", false);
        m.put("model_max_length", c.maxPositionEmbeddings());
        m.put("chat_template", CHAT_TEMPLATE);
        return PythonStyleJson.pretty(m);
    }

    private static Object eos(ModelConfig c) {
        int[] ids = c.eosTokenIds();
        return ids.length == 1 ? (Object) ids[0] : Arrays.stream(ids).boxed().toList();
    }

    static String torchDtype(DType dtype) {
        return switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            // DeepSeek-V3's FP8 checkpoints: the unquantized tensors (embeddings, norms, gates) are BF16.
            case F8_E4M3 -> "bfloat16";
            // The int8 format keeps what it does not quantize in its source type; bfloat16 is typical.
            case I8 -> "bfloat16";
        };
    }
}
