package io.moecluster.core.model;

import io.moecluster.core.io.PythonStyleJson;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.TensorInfo;
import java.io.IOException;
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
    void presetsRoundTripThroughConfigJson() throws IOException {
        for (Architecture arch : Architecture.values()) {
            for (Preset preset : Preset.values()) {
                for (DType dtype : DType.values()) {
                    ModelConfig c = preset.config(arch);
                    String json = HfConfigFiles.config(c, dtype);
                    assertThat(ModelConfig.parse(new com.fasterxml.jackson.databind.ObjectMapper().readTree(json), "x"))
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
        String folder = arch == Architecture.MIXTRAL ? "mixtral-tiny" : "qwen2moe-tiny";
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
