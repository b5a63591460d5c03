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

    private static ObjectNode golden(String model) throws Exception {
        return (ObjectNode) JSON.readTree(Files.readString(GoldenModels.dir(model).resolve("config.json")));
    }
}
