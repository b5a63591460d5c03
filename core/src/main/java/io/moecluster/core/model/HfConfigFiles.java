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
        }
        return PythonStyleJson.pretty(m);
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
        };
    }
}
