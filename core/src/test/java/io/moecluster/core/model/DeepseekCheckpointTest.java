package io.moecluster.core.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Fp8E4m3;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.SafetensorsWriter;
import io.moecluster.core.safetensors.TensorInfo;
import io.moecluster.core.testing.GoldenModels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** DeepSeek-V3 checkpoints as they are shipped: the MTP layer, FP8 companions, and what is wrong with them. */
class DeepseekCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /**
     * Real checkpoints carry model.layers.61.* past num_hidden_layers 61: a model generated with one
     * layer more than its config.json names serves exactly as the config says, the extra layer skipped.
     */
    @Test
    void layersPastNumHiddenLayersAreSkipped() throws Exception {
        Path dir = tmp.resolve("mtp");
        ModelConfig tiny = Preset.TINY.config(Architecture.DEEPSEEK_V3);
        ModelConfig four = new ModelConfig(tiny.architecture(), tiny.vocabSize(), tiny.hiddenSize(), 4, tiny.numHeads(),
                tiny.numKvHeads(), tiny.headDim(), tiny.numExperts(), tiny.topK(), tiny.expertIntermediateSize(),
                tiny.intermediateSize(), tiny.sharedExpertIntermediateSize(), tiny.normTopKProb(), tiny.qkvBias(),
                tiny.rmsNormEps(), tiny.ropeTheta(), tiny.maxPositionEmbeddings(), 0, false, 1, new int[] {2}, 1,
                tiny.mlpOnlyLayers(), null, tiny.mla(), tiny.groupRouting(), null);
        RandomModelGenerator.generate(four, DType.F32, 9, dir, false, 0);
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(dir.resolve("config.json")));
        config.put("num_hidden_layers", 3);
        config.put("num_nextn_predict_layers", 1);
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        try (Checkpoint ckpt = Checkpoint.open(dir);
             WeightLoader loader = new WeightLoader(ckpt, ModelConfig.load(dir))) {
            assertThat(ckpt.contains("model.layers.3.self_attn.kv_b_proj.weight")).isTrue();
            assertThat(loader.skippedLayers()).containsExactly(3);
        }
        try (Engine engine = Engine.open(dir, EngineOptions.defaults().withThreads(1))) {
            float[][] logits = engine.prefillLogits(new int[] {1, 72, 101});
            assertThat(logits[2]).doesNotContain(Float.NaN);
        }
    }

    @Test
    void fp8WeightsWithoutQuantizationConfigOrWithBadScalesAreRefusedNamingTheTensor() throws Exception {
        Path dir = tmp.resolve("noquant");
        copy(GoldenModels.dir(GoldenModels.DEEPSEEK_V3_FP8), dir);
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(dir.resolve("config.json")));
        config.remove("quantization_config");
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        assertThatThrownBy(() -> Engine.open(dir, EngineOptions.defaults().withThreads(1)))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageMatching(".*tensor 'model\\.layers\\.\\d+\\..*\\.weight' is F8_E4M3 but config\\.json has no"
                        + " quantization_config.*");

        Path bf16Scales = tmp.resolve("bf16scales");
        rewrite(GoldenModels.dir(GoldenModels.DEEPSEEK_V3_FP8), bf16Scales, "model.layers.0.self_attn.q_a_proj.weight_scale_inv");
        assertThatThrownBy(() -> Engine.open(bf16Scales, EngineOptions.defaults().withThreads(1)))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("model.layers.0.self_attn.q_a_proj.weight_scale_inv")
                .hasMessageContaining("is BF16; block scales must be F32");

        Path blocks = tmp.resolve("blocks");
        copy(GoldenModels.dir(GoldenModels.DEEPSEEK_V3_FP8), blocks);
        ObjectNode c2 = (ObjectNode) JSON.readTree(Files.readString(blocks.resolve("config.json")));
        ((ObjectNode) c2.get("quantization_config")).putArray("weight_block_size").add(128).add(128);
        Files.writeString(blocks.resolve("config.json"), c2.toPrettyString());
        assertThatThrownBy(() -> Engine.open(blocks, EngineOptions.defaults().withThreads(1)))
                .hasMessageContaining("weight_scale_inv").hasMessageContaining("has shape [2, 4] but the config implies [1, 1]");
    }

    private static void copy(Path from, Path to) throws Exception {
        Files.createDirectories(to);
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            Files.copy(from.resolve(f), to.resolve(f));
        }
    }

    /** The checkpoint of {@code from} with tensor {@code asBf16} stored as BF16. */
    private static void rewrite(Path from, Path to, String asBf16) throws Exception {
        Files.createDirectories(to);
        Files.copy(from.resolve("config.json"), to.resolve("config.json"));
        try (Checkpoint src = Checkpoint.open(from); SafetensorsWriter w = SafetensorsWriter.toCheckpoint(to, 0)) {
            List<String> names = List.copyOf(src.tensorNames());
            for (String n : names) {
                w.declare(n, n.equals(asBf16) ? DType.BF16 : src.info(n).dtype(), src.info(n).shape());
            }
            for (String n : names) {
                TensorInfo info = src.info(n);
                MemorySegment data = src.map(info);
                float[] v = new float[(int) info.elementCount()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = switch (info.dtype()) {
                        case F32 -> data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                        case BF16 -> Bf16.toFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                        case F8_E4M3 -> Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, i));
                        case I8 -> data.get(ValueLayout.JAVA_BYTE, i);
                        case F16 -> Float.float16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                    };
                }
                w.write(n, v);
            }
            w.finish();
        }
    }
}
