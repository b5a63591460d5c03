package io.moecluster.core.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.testing.GoldenModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void readsMixtral() {
        ModelConfig c = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        assertThat(c.architecture()).isEqualTo(Architecture.MIXTRAL);
        assertThat(c.numExperts()).isEqualTo(8);
        assertThat(c.topK()).isEqualTo(2);
        assertThat(c.headDim()).isEqualTo(16);
        assertThat(c.numKvHeads()).isEqualTo(2);
        assertThat(c.expertIntermediateSize()).isEqualTo(128);
        assertThat(c.normTopKProb()).isTrue();
        assertThat(c.qkvBias()).isFalse();
        assertThat(c.hasSharedExpert()).isFalse();
        assertThat(c.slidingWindow()).isZero();
        assertThat(c.isEos(2)).isTrue();
        assertThat(c.isMoeLayer(0)).isTrue();
    }

    @Test
    void readsQwen2Moe() {
        ModelConfig c = ModelConfig.load(GoldenModels.dir(GoldenModels.QWEN2_MOE));
        assertThat(c.architecture()).isEqualTo(Architecture.QWEN2_MOE);
        assertThat(c.expertIntermediateSize()).isEqualTo(128);
        assertThat(c.intermediateSize()).isEqualTo(256);
        assertThat(c.sharedExpertIntermediateSize()).isEqualTo(96);
        assertThat(c.normTopKProb()).isFalse();
        assertThat(c.qkvBias()).isTrue();
    }

    @Test
    void headDimOverridesHiddenOverHeads() throws Exception {
        ObjectNode n = golden(GoldenModels.MIXTRAL);
        n.put("head_dim", 32);
        assertThat(ModelConfig.parse(n, "cfg").headDim()).isEqualTo(32);
        assertThat(ModelConfig.parse(n, "cfg").queryDim()).isEqualTo(128);
    }

    @Test
    void eosMayBeAList() throws Exception {
        ObjectNode n = golden(GoldenModels.MIXTRAL);
        n.putArray("eos_token_id").add(2).add(7);
        ModelConfig c = ModelConfig.parse(n, "cfg");
        assertThat(c.isEos(7)).isTrue();
        assertThat(c.isEos(3)).isFalse();
    }

    @Test
    void mlpOnlyLayersAndSparseStepDecideDenseLayers() throws Exception {
        ObjectNode n = golden(GoldenModels.QWEN2_MOE);
        n.put("num_hidden_layers", 4);
        n.putArray("mlp_only_layers").add(0);
        n.put("decoder_sparse_step", 2);
        ModelConfig c = ModelConfig.parse(n, "cfg");
        assertThat(new boolean[] {c.isMoeLayer(0), c.isMoeLayer(1), c.isMoeLayer(2), c.isMoeLayer(3)})
                .containsExactly(false, true, false, true);
    }

    @Test
    void rejectsOtherModelTypesNamingThem() throws Exception {
        ObjectNode n = golden(GoldenModels.MIXTRAL);
        n.put("model_type", "deepseek_v2");
        assertThatThrownBy(() -> ModelConfig.parse(n, "x/config.json"))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("x/config.json")
                .hasMessageContaining("unsupported model_type 'deepseek_v2'")
                .hasMessageContaining("mixtral, qwen2_moe, deepseek_v3");
    }

    @Test
    void namesMissingAndBadFields() throws Exception {
        ObjectNode missing = golden(GoldenModels.MIXTRAL);
        missing.remove("num_local_experts");
        assertThatThrownBy(() -> ModelConfig.parse(missing, "cfg"))
                .hasMessageContaining("missing field 'num_local_experts'");
        ObjectNode bad = golden(GoldenModels.MIXTRAL);
        bad.put("num_key_value_heads", 3);
        assertThatThrownBy(() -> ModelConfig.parse(bad, "cfg"))
                .hasMessageContaining("not a multiple of num_key_value_heads 3");
        ObjectNode topk = golden(GoldenModels.MIXTRAL);
        topk.put("num_experts_per_tok", 9);
        assertThatThrownBy(() -> ModelConfig.parse(topk, "cfg")).hasMessageContaining("exceeds the number of experts 8");
        ObjectNode scaling = golden(GoldenModels.MIXTRAL);
        scaling.putObject("rope_scaling").put("type", "yarn");
        assertThatThrownBy(() -> ModelConfig.parse(scaling, "cfg")).hasMessageContaining("rope_scaling");
        ObjectNode neg = golden(GoldenModels.MIXTRAL);
        neg.put("hidden_size", -4);
        assertThatThrownBy(() -> ModelConfig.parse(neg, "cfg")).hasMessageContaining("'hidden_size' must be an integer >= 1");
    }

    @Test
    void missingOrBrokenConfigFileIsNamed(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() -> ModelConfig.load(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(dir.resolve("config.json").toString())
                .hasMessageContaining("not found");
        Files.writeString(dir.resolve("config.json"), "{ not json");
        assertThatThrownBy(() -> ModelConfig.load(dir)).hasMessageContaining("cannot parse JSON");
    }

    @Test
    void anyExpertCountWorks() throws Exception {
        for (int experts : new int[] {8, 16, 64, 256}) {
            ObjectNode n = golden(GoldenModels.MIXTRAL);
            n.put("num_local_experts", experts);
            n.put("num_experts_per_tok", 8);
            assertThat(ModelConfig.parse(n, "cfg").numExperts()).isEqualTo(experts);
        }
    }

    @Test
    void readsDeepseekV3() {
        ModelConfig c = ModelConfig.load(GoldenModels.dir(GoldenModels.DEEPSEEK_V3));
        assertThat(c.architecture()).isEqualTo(Architecture.DEEPSEEK_V3);
        assertThat(c.mla()).isEqualTo(new MlaConfig(32, 24, 16, 8, 16, true));
        assertThat(c.isMla()).isTrue();
        assertThat(c.numExperts()).isEqualTo(16);
        assertThat(c.topK()).isEqualTo(4);
        assertThat(c.expertIntermediateSize()).isEqualTo(32);
        assertThat(c.intermediateSize()).isEqualTo(128);
        assertThat(c.sharedExpertIntermediateSize()).isEqualTo(32);
        assertThat(c.hasSharedExpert()).isTrue();
        assertThat(c.sharedExpertGated()).isFalse();
        assertThat(c.groupRouting()).isEqualTo(new GroupLimitedRouting(4, 2, 2.5));
        assertThat(c.normTopKProb()).isTrue();
        assertThat(new boolean[] {c.isMoeLayer(0), c.isMoeLayer(1), c.isMoeLayer(2)}).containsExactly(false, true, true);
        assertThat(c.ropeScaling()).isNull();
        assertThat(c.quantization()).isNull();
        assertThat(c.ropeDim()).isEqualTo(8);
        assertThat(c.kvCacheFloatsPerToken()).isEqualTo(32);
        assertThat(c.uncompressedKvFloatsPerToken()).isEqualTo(4 * (24 + 16));
        ModelConfig fp8 = ModelConfig.load(GoldenModels.dir(GoldenModels.DEEPSEEK_V3_FP8));
        assertThat(fp8.quantization()).isEqualTo(new BlockQuantization(16, 16));
    }

    /** The real model's config.json (DeepSeek-V3 / Rakuten AI 3.0 shapes), every key it has. */
    @Test
    void readsTheRealDeepseekV3Config() throws Exception {
        String json = """
                {"architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
                 "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config"}, "bos_token_id": 0,
                 "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3, "hidden_act": "silu",
                 "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432, "kv_lora_rank": 512,
                 "max_position_embeddings": 163840, "model_type": "deepseek_v3", "moe_intermediate_size": 2048,
                 "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1,
                 "norm_topk_prob": true, "num_attention_heads": 128, "num_experts_per_tok": 8,
                 "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
                 "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                 "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                   "weight_block_size": [128, 128]},
                 "rms_norm_eps": 1e-06, "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40,
                   "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"},
                 "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_group": 4,
                 "topk_method": "noaux_tc", "torch_dtype": "bfloat16", "transformers_version": "4.33.1",
                 "use_cache": true, "v_head_dim": 128, "vocab_size": 129280}""";
        ModelConfig c = ModelConfig.parse(JSON.readTree(json), "v3");
        assertThat(c.mla()).isEqualTo(new MlaConfig(1536, 512, 128, 64, 128, true));
        assertThat(c.kvCacheFloatsPerToken()).as("the issue's 576").isEqualTo(576);
        assertThat(c.uncompressedKvFloatsPerToken()).as("128 heads x 320").isEqualTo(128 * 320);
        assertThat(c.mlpOnlyLayers()).containsExactly(0, 1, 2);
        assertThat(c.expertSlots()).isEqualTo(257);
        assertThat(c.quantization()).isEqualTo(new BlockQuantization(128, 128));
        assertThat(c.ropeScaling().effectiveFactor(c.maxPositionEmbeddings())).isEqualTo(40.0);
        assertThat(c.ropeScaling().attentionFactor(c.maxPositionEmbeddings())).isEqualTo(1.0);
        ObjectNode noLora = (ObjectNode) JSON.readTree(json);
        noLora.putNull("q_lora_rank");
        assertThat(ModelConfig.parse(noLora, "v2-lite-like").mla().qLoraRank()).isZero();
    }

    /** What the engine cannot serve is refused naming the key and the value. */
    @Test
    void refusesDeepseekValuesItCannotServeNamingKeyAndValue() throws Exception {
        assertRefused("scoring_func", "softmax", "scoring_func \"softmax\" is not supported (only sigmoid)");
        assertRefused("topk_method", "greedy", "topk_method \"greedy\" is not supported (only noaux_tc)");
        assertRefused("moe_layer_freq", 2, "moe_layer_freq 2 is not supported (only 1)");
        assertRefused("n_group", 5, "n_group 5 does not divide n_routed_experts 16");
        assertRefused("n_group", 16, "n_group 16 leaves 1 expert per group");
        assertRefused("topk_group", 5, "topk_group 5 exceeds n_group 4");
        assertRefused("num_experts_per_tok", 9, "num_experts_per_tok 9 exceeds the 8 experts of topk_group 2 groups");
        assertRefused("attention_bias", true, "attention_bias true is not supported");
        assertRefused("first_k_dense_replace", 4, "first_k_dense_replace 4 exceeds num_hidden_layers 3");
        assertRefused("qk_rope_head_dim", 7, "qk_rope_head_dim 7 must be even");
        ObjectNode missing = golden(GoldenModels.DEEPSEEK_V3);
        missing.remove("q_lora_rank");
        assertThatThrownBy(() -> ModelConfig.parse(missing, "cfg")).hasMessageContaining("missing field 'q_lora_rank'");
        ObjectNode quant = golden(GoldenModels.DEEPSEEK_V3_FP8);
        ((ObjectNode) quant.get("quantization_config")).put("quant_method", "gptq");
        assertThatThrownBy(() -> ModelConfig.parse(quant, "cfg"))
                .hasMessageContaining("quantization_config.quant_method \"gptq\" is not supported (only fp8 or int8)");
        ObjectNode fmt = golden(GoldenModels.DEEPSEEK_V3_FP8);
        ((ObjectNode) fmt.get("quantization_config")).put("fmt", "e5m2");
        assertThatThrownBy(() -> ModelConfig.parse(fmt, "cfg"))
                .hasMessageContaining("quantization_config.fmt \"e5m2\" is not supported (only e4m3)");
        ObjectNode scheme = golden(GoldenModels.DEEPSEEK_V3_FP8);
        ((ObjectNode) scheme.get("quantization_config")).put("activation_scheme", "static");
        assertThatThrownBy(() -> ModelConfig.parse(scheme, "cfg"))
                .hasMessageContaining("quantization_config.activation_scheme \"static\" is not supported (only dynamic)");
        ObjectNode block = golden(GoldenModels.DEEPSEEK_V3_FP8);
        ((ObjectNode) block.get("quantization_config")).putArray("weight_block_size").add(128);
        assertThatThrownBy(() -> ModelConfig.parse(block, "cfg"))
                .hasMessageContaining("quantization_config.weight_block_size must be two positive integers");
    }

    @Test
    void ropeScalingYarnForEveryArchitectureOthersRefused() throws Exception {
        for (String model : new String[] {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE, GoldenModels.DEEPSEEK_V3}) {
            ObjectNode n = golden(model);
            n.putObject("rope_scaling").put("type", "yarn").put("factor", 4.0).put("original_max_position_embeddings", 1024);
            assertThat(ModelConfig.parse(n, "cfg").ropeScaling())
                    .isEqualTo(new RopeScaling(4.0, 1024, 32, 1, 0, 0, Double.NaN, true));
            ObjectNode linear = golden(model);
            linear.putObject("rope_scaling").put("type", "linear").put("factor", 2.0);
            assertThatThrownBy(() -> ModelConfig.parse(linear, "cfg"))
                    .hasMessageContaining("rope_scaling.type 'linear' is not supported (only yarn)");
            ObjectNode dynamic = golden(model);
            dynamic.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", 2.0);
            assertThatThrownBy(() -> ModelConfig.parse(dynamic, "cfg"))
                    .hasMessageContaining("rope_scaling.rope_type 'dynamic' is not supported (only yarn)");
            ObjectNode beta = golden(model);
            beta.putObject("rope_scaling").put("type", "yarn").put("factor", 4.0).put("beta_fast", -1);
            assertThatThrownBy(() -> ModelConfig.parse(beta, "cfg"))
                    .hasMessageContaining("field 'rope_scaling.beta_fast' must be a positive number, got -1");
            ObjectNode small = golden(model);
            small.putObject("rope_scaling").put("type", "yarn").put("factor", 0.5);
            assertThatThrownBy(() -> ModelConfig.parse(small, "cfg"))
                    .hasMessageContaining("rope_scaling.factor must be a number >= 1 for yarn, got 0.5");
        }
    }

    private static void assertRefused(String key, Object value, String message) throws Exception {
        ObjectNode n = golden(GoldenModels.DEEPSEEK_V3);
        n.set(key, JSON.valueToTree(value));
        assertThatThrownBy(() -> ModelConfig.parse(n, "x/config.json"))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("x/config.json")
                .hasMessageContaining(message);
    }

    private static ObjectNode golden(String model) throws Exception {
        return (ObjectNode) JSON.readTree(Files.readString(GoldenModels.dir(model).resolve("config.json")));
    }
}
