package io.moecluster.core.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.io.PythonStyleJson;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.TensorInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.ByteOrder;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class RandomModelGeneratorTest {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(Architecture.class)
    void tinyModelLoadsWithEveryTensorInItsShape(Architecture arch) throws IOException {
        Path out = tmp.resolve(arch.modelType());
        ModelConfig written = RandomModelGenerator.generate(arch, Preset.TINY, DType.F32, 7, out);

        ModelConfig config = ModelConfig.load(out);
        assertThat(config).isEqualTo(written).isEqualTo(Preset.TINY.config(arch));
        Map<String, long[]> expected = expectedShapes(config);
        try (Checkpoint ckpt = Checkpoint.open(out)) {
            assertThat(ckpt.tensorNames()).containsExactlyInAnyOrderElementsOf(expected.keySet());
            expected.forEach((name, shape) -> assertThat(ckpt.info(name, shape).dtype()).isEqualTo(DType.F32));
        }
        assertThat(out.resolve("tokenizer.json")).exists();
        assertThat(Files.readString(out.resolve("generation_config.json")))
                .contains("\"bos_token_id\": 1").contains("\"eos_token_id\": 2");
        assertThat(Files.readString(out.resolve("tokenizer_config.json"))).contains("\"eos_token\": \"</s>\"");
    }

    @ParameterizedTest
    @EnumSource(Architecture.class)
    void tinyConfigAndTokenizerAreByteIdenticalToTheGoldenOnes(Architecture arch) throws Exception {
        Path out = tmp.resolve("g");
        RandomModelGenerator.generate(arch, Preset.TINY, DType.F32, 1, out);
        Path golden = golden(arch);
        assertThat(Files.readString(out.resolve("config.json"))).isEqualTo(Files.readString(golden.resolve("config.json")));
        assertThat(Files.mismatch(out.resolve("tokenizer.json"), golden.resolve("tokenizer.json"))).isEqualTo(-1);
    }

    @Test
    void torchDtypeFollowsTheWeightsDtype() throws IOException {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.BF16, 1, tmp);
        assertThat(Files.readString(tmp.resolve("config.json"))).contains("\"torch_dtype\": \"bfloat16\"");
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            assertThat(ckpt.info("lm_head.weight").dtype()).isEqualTo(DType.BF16);
        }
    }

    @Test
    void sameSeedGivesIdenticalBytesAndAnotherSeedDoesNot() throws IOException {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        Path c = tmp.resolve("c");
        RandomModelGenerator.generate(Architecture.QWEN2_MOE, Preset.TINY, DType.BF16, 42, a);
        RandomModelGenerator.generate(Architecture.QWEN2_MOE, Preset.TINY, DType.BF16, 42, b);
        RandomModelGenerator.generate(Architecture.QWEN2_MOE, Preset.TINY, DType.BF16, 43, c);
        try (Stream<Path> files = Files.list(a)) {
            for (Path f : files.toList()) {
                assertThat(Files.mismatch(f, b.resolve(f.getFileName()))).as(f.getFileName().toString()).isEqualTo(-1);
            }
        }
        assertThat(Files.mismatch(a.resolve("model.safetensors"), c.resolve("model.safetensors"))).isNotEqualTo(-1);
    }

    @Test
    void shardingDoesNotChangeTheValues() throws IOException {
        Path single = tmp.resolve("single");
        Path sharded = tmp.resolve("sharded");
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 5, single);
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 5, sharded, false, 400_000);
        assertThat(sharded.resolve("model.safetensors.index.json")).exists();
        assertThat(sharded.resolve("model-00002-of-00005.safetensors")).exists();
        try (Checkpoint s = Checkpoint.open(single); Checkpoint m = Checkpoint.open(sharded)) {
            assertThat(m.isSharded()).isTrue();
            assertThat(m.tensorNames()).containsExactlyInAnyOrderElementsOf(s.tensorNames());
            for (String name : s.tensorNames()) {
                assertThat(m.map(m.info(name)).mismatch(s.map(s.info(name)))).as(name).isEqualTo(-1);
            }
        }
    }

    @Test
    void initialisationKeepsActivationsOfOrderOne() throws IOException {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 3, tmp);
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            // Uniform(±sqrt(3/fan_in)) has variance 1/fan_in; fan_in of w2 is the expert FFN width.
            assertThat(std(ckpt, "model.layers.1.block_sparse_moe.experts.3.w2.weight"))
                    .isBetween(0.8 / Math.sqrt(128), 1.2 / Math.sqrt(128));
            assertThat(std(ckpt, "model.embed_tokens.weight")).isBetween(0.9, 1.1);
            assertThat(mean(ckpt, "model.norm.weight")).isBetween(0.95, 1.05);
        }
    }

    @Test
    void refusesANonEmptyDirectoryUnlessToldToOverwrite() throws IOException {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 1, tmp, false, 400_000);
        Files.writeString(tmp.resolve("notes.txt"), "keep me");
        assertThatThrownBy(() -> RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 2, tmp))
                .isInstanceOf(FileAlreadyExistsException.class)
                .hasMessageContaining(tmp.toString()).hasMessageContaining("not empty").hasMessageContaining("overwrite");

        // Overwriting a sharded model with a single-file one must not leave the old index behind.
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 2, tmp, true);
        assertThat(tmp.resolve("model.safetensors.index.json")).doesNotExist();
        assertThat(tmp.resolve("model-00001-of-00005.safetensors")).doesNotExist();
        assertThat(tmp.resolve("notes.txt")).hasContent("keep me");
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            assertThat(ckpt.isSharded()).isFalse();
        }
    }

    @Test
    void benchPresetHasTheSpecifiedShape() {
        ModelConfig m = Preset.BENCH.config(Architecture.MIXTRAL);
        assertThat(new int[] {m.vocabSize(), m.hiddenSize(), m.numLayers(), m.numHeads(), m.numKvHeads(), m.headDim(),
                m.numExperts(), m.topK(), m.expertIntermediateSize()})
                .containsExactly(32000, 1024, 8, 16, 4, 64, 8, 2, 2048);
        long params = RandomModelGenerator.parameterCount(m);
        assertThat(params).isEqualTo(handCount(m)).isBetween(450_000_000L, 550_000_000L);

        ModelConfig q = Preset.BENCH.config(Architecture.QWEN2_MOE);
        assertThat(new int[] {q.vocabSize(), q.hiddenSize(), q.numLayers(), q.numHeads(), q.numKvHeads(), q.headDim(),
                q.numExperts(), q.topK(), q.expertIntermediateSize(), q.sharedExpertIntermediateSize(),
                q.intermediateSize()})
                .containsExactly(32000, 1024, 8, 16, 4, 64, 8, 2, 1024, 2048, 4096);
        assertThat(q.qkvBias()).isTrue();
        // Fewer routed-expert weights than Mixtral's (FFN 1024 vs 2048), partly made up by the shared expert.
        assertThat(RandomModelGenerator.parameterCount(q)).isEqualTo(handCount(q)).isBetween(300_000_000L, 400_000_000L);
    }

    @Test
    void deepseekBenchPresetIsV3ScaledDown() {
        ModelConfig d = Preset.BENCH.config(Architecture.DEEPSEEK_V3);
        assertThat(new int[] {d.vocabSize(), d.hiddenSize(), d.numLayers(), d.numHeads(), d.numExperts(), d.topK(),
                d.expertIntermediateSize(), d.sharedExpertIntermediateSize(), d.intermediateSize()})
                .containsExactly(32000, 1024, 8, 16, 64, 6, 256, 512, 2816);
        assertThat(d.mla()).isEqualTo(new MlaConfig(384, 256, 64, 32, 64, true));
        assertThat(d.groupRouting()).isEqualTo(new GroupLimitedRouting(8, 4, 2.5));
        assertThat(d.mlpOnlyLayers()).containsExactly(0);
        assertThat(d.ropeScaling().effectiveFactor(d.maxPositionEmbeddings())).isEqualTo(40.0);
        // 288 floats cached per token and layer where every head's keys and values would take 2048.
        assertThat(d.kvCacheFloatsPerToken()).isEqualTo(288);
        assertThat(d.uncompressedKvFloatsPerToken()).isEqualTo(16 * (96 + 64));
        assertThat(RandomModelGenerator.parameterCount(d)).isEqualTo(handCount(d)).isBetween(400_000_000L, 500_000_000L);
    }

    /**
     * FP8 as DeepSeek-V3 ships it: linear weights F8_E4M3 with F32 block scales (16x16 at the tiny
     * size: kv_b_proj's 24 columns are one and a half blocks), the correction bias F32, the rest
     * BF16; the config byte-identical to the golden FP8 model's; the dequantised weights within
     * E4M3's half-step (2^-4 relative) of the F32 model's of the same seed.
     */
    @Test
    void fp8CheckpointIsDeepseekV3sLayout() throws Exception {
        Path fp8 = tmp.resolve("fp8");
        Path f32 = tmp.resolve("f32");
        ModelConfig written = RandomModelGenerator.generate(Architecture.DEEPSEEK_V3, Preset.TINY, DType.F8_E4M3, 4, fp8);
        RandomModelGenerator.generate(Architecture.DEEPSEEK_V3, Preset.TINY, DType.F32, 4, f32);
        assertThat(written.quantization()).isEqualTo(new BlockQuantization(16, 16));
        assertThat(ModelConfig.load(fp8)).isEqualTo(written);
        assertThat(Files.readString(fp8.resolve("config.json")))
                .isEqualTo(Files.readString(golden(Architecture.DEEPSEEK_V3).getParent()
                        .resolve("deepseek-v3-tiny-fp8").resolve("config.json")));
        try (Checkpoint q = Checkpoint.open(fp8); Checkpoint ref = Checkpoint.open(f32);
             WeightLoader loader = new WeightLoader(q, written)) {
            String kvb = "model.layers.1.self_attn.kv_b_proj.weight";
            assertThat(q.info(kvb).dtype()).isEqualTo(DType.F8_E4M3);
            assertThat(q.info(kvb + "_scale_inv").shape()).containsExactly(8, 2);
            assertThat(q.info(kvb + "_scale_inv").dtype()).isEqualTo(DType.F32);
            assertThat(q.info("model.layers.1.mlp.experts.3.down_proj.weight").dtype()).isEqualTo(DType.F8_E4M3);
            assertThat(q.info("model.layers.0.mlp.gate_proj.weight").dtype()).isEqualTo(DType.F8_E4M3);
            assertThat(q.info("model.layers.1.mlp.gate.weight").dtype()).isEqualTo(DType.BF16);
            assertThat(q.info("model.layers.1.mlp.gate.e_score_correction_bias").dtype()).isEqualTo(DType.F32);
            assertThat(q.info("model.embed_tokens.weight").dtype()).isEqualTo(DType.BF16);
            assertThat(q.info("lm_head.weight").dtype()).isEqualTo(DType.BF16);
            assertThat(q.info("model.layers.2.self_attn.kv_a_layernorm.weight").dtype()).isEqualTo(DType.BF16);
            var w = loader.mla(1).kvB();
            assertThat(w.format()).isEqualTo("F8_E4M3");
            assertThat(w.byteSize()).isEqualTo(128L * 24 + 8 * 2 * 4);
            double[] exact = values(ref, kvb);
            MemorySegment row = Arena.ofAuto().allocate(24 * 4);
            for (int r = 0; r < 128; r++) {
                w.copyRowTo(r, row, 0);
                for (int c = 0; c < 24; c++) {
                    double e = exact[r * 24 + c];
                    double blockMax = 0;
                    for (int rr = r / 16 * 16; rr < Math.min(128, r / 16 * 16 + 16); rr++) {
                        for (int cc = c / 16 * 16; cc < Math.min(24, c / 16 * 16 + 16); cc++) {
                            blockMax = Math.max(blockMax, Math.abs(exact[rr * 24 + cc]));
                        }
                    }
                    // Half an E4M3 step at the value, or half the smallest subnormal step of the block's scale.
                    double bound = Math.max(Math.abs(e) / 16, blockMax / 448 * 0x1p-10) * 1.0001;
                    assertThat(Math.abs(row.getAtIndex(F32_LE, c) - e)).as("row %d col %d", r, c).isLessThanOrEqualTo(bound);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Architecture.class)
    void resizedModelLoadsWithEveryTensorInItsNewShape(Architecture arch) throws IOException {
        ModelConfig tiny = Preset.TINY.config(arch);
        ModelConfig resized = tiny.withSizes(128, 48, 4);
        assertThat(resized.hiddenSize()).isEqualTo(128);
        assertThat(resized.expertIntermediateSize()).isEqualTo(48);
        assertThat(resized.numLayers()).isEqualTo(4);
        assertThat(resized.numHeads()).isEqualTo(tiny.numHeads());
        if (arch == Architecture.DEEPSEEK_V3) {
            assertThat(resized.headDim()).isEqualTo(tiny.headDim());
            assertThat(resized.sharedExpertIntermediateSize()).isEqualTo(48);
            assertThat(resized.mlpOnlyLayers()).containsExactly(tiny.mlpOnlyLayers());
        } else {
            assertThat(resized.headDim()).isEqualTo(128 / tiny.numHeads());
        }
        assertThat(resized.intermediateSize())
                .isEqualTo(arch == Architecture.MIXTRAL ? 48 : tiny.intermediateSize());
        assertThat(tiny.withSizes(0, 0, 0)).isEqualTo(tiny);

        Path out = tmp.resolve("resized-" + arch.modelType());
        RandomModelGenerator.generate(resized, DType.F32, 3, out, false, 0);
        ModelConfig loaded = ModelConfig.load(out);
        assertThat(loaded).isEqualTo(resized);
        try (Checkpoint ckpt = Checkpoint.open(out)) {
            expectedShapes(loaded).forEach((name, shape) -> assertThat(ckpt.info(name, shape).dtype())
                    .isEqualTo(DType.F32));
        }
    }

    @Test
    void sizesThatDoNotFitAreRefusedNamingThem() {
        ModelConfig mixtral = Preset.TINY.config(Architecture.MIXTRAL);
        assertThatThrownBy(() -> mixtral.withSizes(66, 0, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("hidden size 66");
        assertThatThrownBy(() -> mixtral.withSizes(0, -1, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("intermediate -1");
        ModelConfig deepseek = Preset.TINY.config(Architecture.DEEPSEEK_V3);
        assertThatThrownBy(() -> deepseek.withSizes(0, 0, 1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("layers 1");
    }

    @Test
    void presetsRoundTripThroughConfigJson() throws IOException {
        for (Architecture arch : Architecture.values()) {
            for (Preset preset : Preset.values()) {
                for (DType dtype : DType.values()) {
                    ModelConfig c = preset.config(arch);
                    String json = HfConfigFiles.config(c, dtype);
                    assertThat(ModelConfig.parse(new ObjectMapper().readTree(json), "x"))
                            .isEqualTo(c);
                }
            }
        }
    }

    @Test
    void pythonFloatRepr() {
        assertThat(PythonStyleJson.repr(1e-5)).isEqualTo("1e-05");
        assertThat(PythonStyleJson.repr(1e-6)).isEqualTo("1e-06");
        assertThat(PythonStyleJson.repr(1e-4)).isEqualTo("0.0001");
        assertThat(PythonStyleJson.repr(10000.0)).isEqualTo("10000.0");
        assertThat(PythonStyleJson.repr(1e6)).isEqualTo("1000000.0");
        assertThat(PythonStyleJson.repr(0.02)).isEqualTo("0.02");
        assertThat(PythonStyleJson.repr(1e16)).isEqualTo("1e+16");
        assertThat(PythonStyleJson.repr(-123.456)).isEqualTo("-123.456");
        assertThat(PythonStyleJson.repr(1.5e-10)).isEqualTo("1.5e-10");
    }

    /** The tensors of a transformers checkpoint, written out independently of the generator. */
    private static Map<String, long[]> expectedShapes(ModelConfig c) {
        Map<String, long[]> t = new LinkedHashMap<>();
        long h = c.hiddenSize();
        long v = c.vocabSize();
        long qd = (long) c.numHeads() * c.headDim();
        long kvd = (long) c.numKvHeads() * c.headDim();
        long f = c.expertIntermediateSize();
        t.put("model.embed_tokens.weight", new long[] {v, h});
        t.put("model.norm.weight", new long[] {h});
        t.put("lm_head.weight", new long[] {v, h});
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            t.put(p + "input_layernorm.weight", new long[] {h});
            t.put(p + "post_attention_layernorm.weight", new long[] {h});
            if (c.architecture() == Architecture.DEEPSEEK_V3) {
                // DeepSeek-V3 as its checkpoints name it: MLA with q LoRA, a dense first layer, shared_experts.
                MlaConfig m = c.mla();
                long heads = c.numHeads();
                t.put(p + "self_attn.q_a_proj.weight", new long[] {m.qLoraRank(), h});
                t.put(p + "self_attn.q_a_layernorm.weight", new long[] {m.qLoraRank()});
                t.put(p + "self_attn.q_b_proj.weight", new long[] {heads * (m.qkNopeHeadDim() + m.qkRopeHeadDim()),
                        m.qLoraRank()});
                t.put(p + "self_attn.kv_a_proj_with_mqa.weight", new long[] {m.kvLoraRank() + m.qkRopeHeadDim(), h});
                t.put(p + "self_attn.kv_a_layernorm.weight", new long[] {m.kvLoraRank()});
                t.put(p + "self_attn.kv_b_proj.weight", new long[] {heads * (m.qkNopeHeadDim() + m.vHeadDim()),
                        m.kvLoraRank()});
                t.put(p + "self_attn.o_proj.weight", new long[] {h, heads * m.vHeadDim()});
                String[] mlp = {"gate_proj", "up_proj", "down_proj"};
                if (l < c.mlpOnlyLayers().length) {
                    long d = c.intermediateSize();
                    t.put(p + "mlp.gate_proj.weight", new long[] {d, h});
                    t.put(p + "mlp.up_proj.weight", new long[] {d, h});
                    t.put(p + "mlp.down_proj.weight", new long[] {h, d});
                    continue;
                }
                t.put(p + "mlp.gate.weight", new long[] {c.numExperts(), h});
                t.put(p + "mlp.gate.e_score_correction_bias", new long[] {c.numExperts()});
                for (int e = 0; e < c.numExperts(); e++) {
                    String x = p + "mlp.experts." + e + ".";
                    t.put(x + "gate_proj.weight", new long[] {f, h});
                    t.put(x + "up_proj.weight", new long[] {f, h});
                    t.put(x + "down_proj.weight", new long[] {h, f});
                }
                long s = c.sharedExpertIntermediateSize();
                t.put(p + "mlp.shared_experts.gate_proj.weight", new long[] {s, h});
                t.put(p + "mlp.shared_experts.up_proj.weight", new long[] {s, h});
                t.put(p + "mlp.shared_experts.down_proj.weight", new long[] {h, s});
                continue;
            }
            t.put(p + "self_attn.q_proj.weight", new long[] {qd, h});
            t.put(p + "self_attn.k_proj.weight", new long[] {kvd, h});
            t.put(p + "self_attn.v_proj.weight", new long[] {kvd, h});
            t.put(p + "self_attn.o_proj.weight", new long[] {h, qd});
            if (c.architecture() == Architecture.MIXTRAL) {
                t.put(p + "block_sparse_moe.gate.weight", new long[] {c.numExperts(), h});
                for (int e = 0; e < c.numExperts(); e++) {
                    String x = p + "block_sparse_moe.experts." + e + ".";
                    t.put(x + "w1.weight", new long[] {f, h});
                    t.put(x + "w3.weight", new long[] {f, h});
                    t.put(x + "w2.weight", new long[] {h, f});
                }
            } else {
                t.put(p + "self_attn.q_proj.bias", new long[] {qd});
                t.put(p + "self_attn.k_proj.bias", new long[] {kvd});
                t.put(p + "self_attn.v_proj.bias", new long[] {kvd});
                t.put(p + "mlp.gate.weight", new long[] {c.numExperts(), h});
                for (int e = 0; e < c.numExperts(); e++) {
                    String x = p + "mlp.experts." + e + ".";
                    t.put(x + "gate_proj.weight", new long[] {f, h});
                    t.put(x + "up_proj.weight", new long[] {f, h});
                    t.put(x + "down_proj.weight", new long[] {h, f});
                }
                long s = c.sharedExpertIntermediateSize();
                t.put(p + "mlp.shared_expert.gate_proj.weight", new long[] {s, h});
                t.put(p + "mlp.shared_expert.up_proj.weight", new long[] {s, h});
                t.put(p + "mlp.shared_expert.down_proj.weight", new long[] {h, s});
                t.put(p + "mlp.shared_expert_gate.weight", new long[] {1, h});
            }
        }
        return t;
    }

    private static long handCount(ModelConfig c) {
        long n = 0;
        for (long[] shape : expectedShapes(c).values()) {
            long size = 1;
            for (long d : shape) {
                size *= d;
            }
            n += size;
        }
        return n;
    }

    private static Path golden(Architecture arch) throws URISyntaxException {
        String folder = switch (arch) {
            case MIXTRAL -> "mixtral-tiny";
            case QWEN2_MOE -> "qwen2moe-tiny";
            case DEEPSEEK_V3 -> "deepseek-v3-tiny";
        };
        return Path.of(RandomModelGeneratorTest.class.getResource("/golden/" + folder + "/config.json").toURI()).getParent();
    }

    private static double mean(Checkpoint ckpt, String name) {
        double[] v = values(ckpt, name);
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    private static double std(Checkpoint ckpt, String name) {
        double[] v = values(ckpt, name);
        double m = mean(ckpt, name);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / v.length);
    }

    private static double[] values(Checkpoint ckpt, String name) {
        TensorInfo info = ckpt.info(name);
        MemorySegment seg = ckpt.map(info);
        double[] out = new double[(int) info.elementCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = seg.getAtIndex(F32_LE, i);
        }
        return out;
    }
}
