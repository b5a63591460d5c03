package io.moecluster.core.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.SafetensorsWriter;
import io.moecluster.core.safetensors.TensorInfo;
import io.moecluster.core.testing.GoldenModels;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** F16 checkpoints are served from their mapping by the F16 kernels, with no F32 copy. */
class F16CheckpointTest {
    @TempDir
    Path tmp;

    /** Every matrix the loader hands out for the whole model, by tensor name (the LM head once even when tied). */
    private static Map<String, WeightMatrix> loadEverything(WeightLoader loader, ModelConfig config) {
        List<WeightMatrix> all = new ArrayList<>(List.of(loader.embeddings(), loader.lmHead()));
        loader.finalNorm();
        for (int l = 0; l < config.numLayers(); l++) {
            if (config.isMla()) {
                MlaWeights a = loader.mla(l);
                all.addAll(List.of(a.qA(), a.qB(), a.kvA(), a.kvB(), a.o()));
            } else {
                AttentionWeights a = loader.attention(l);
                all.addAll(List.of(a.q(), a.k(), a.v(), a.o()));
            }
            List<FfnWeights> ffns = new ArrayList<>();
            if (config.isMoeLayer(l)) {
                all.add(loader.router(l));
                loader.routerBias(l);
                for (int e = 0; e < config.numExperts(); e++) {
                    ffns.add(loader.expert(l, e));
                }
                if (config.hasSharedExpert()) {
                    ffns.add(loader.sharedExpert(l));
                    if (config.sharedExpertGated()) {
                        all.add(loader.sharedExpertGate(l));
                    }
                }
            } else {
                ffns.add(loader.denseMlp(l));
            }
            for (FfnWeights f : ffns) {
                all.addAll(List.of(f.gate(), f.up(), f.down()));
            }
        }
        Map<String, WeightMatrix> byName = new LinkedHashMap<>();
        all.forEach(w -> byName.put(w.name(), w));
        return byName;
    }

    @ParameterizedTest
    @EnumSource(Architecture.class)
    void f16MatricesAreMappedAndOnlyOneDimensionalTensorsAllocated(Architecture arch) throws IOException {
        Path dir = tmp.resolve(arch.modelType());
        RandomModelGenerator.generate(arch, Preset.TINY, DType.F16, 3, dir);
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config)) {
            Map<String, WeightMatrix> matrices = loadEverything(loader, config);
            long matrixBytes = 0;
            for (WeightMatrix w : matrices.values()) {
                assertThat(w.format()).as(w.name()).isEqualTo("F16");
                assertThat(w.isMapped()).as("%s is the checkpoint's mapping", w.name()).isTrue();
                assertThat(w.byteSize()).as(w.name()).isEqualTo(2L * w.rows() * w.cols());
                matrixBytes += w.byteSize();
            }
            long oneDimensional = 0;
            long checkpointBytes = 0;
            for (String name : ckpt.tensorNames()) {
                TensorInfo info = ckpt.info(name);
                checkpointBytes += info.byteSize();
                if (info.rank() == 1) {
                    oneDimensional += info.elementCount();
                }
            }
            // A tied LM head is the embeddings loaded a second time: mapped twice, one tensor.
            boolean tied = !matrices.containsKey("lm_head.weight");
            assertThat(loader.mappedBytes()).as("every matrix mapped, counted per call")
                    .isEqualTo(matrixBytes + (tied ? matrices.get("model.embed_tokens.weight").byteSize() : 0));
            assertThat(loader.allocatedBytes()).as("f32 copies of the norms and biases, nothing else")
                    .isEqualTo(4 * oneDimensional);
            assertThat(matrixBytes + 2 * oneDimensional).as("the matrices and 1-D tensors are the whole checkpoint")
                    .isEqualTo(checkpointBytes);
        }
    }

    /**
     * The golden model's weights rounded to f16, stored once as F16 and once as F32: the same values,
     * so the same logits, to the bit (the F16 kernels widen each weight exactly and accumulate in
     * the F32 kernels' order).
     */
    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE})
    void anF16ModelGivesTheLogitsOfItsValuesStoredAsF32(String model) throws Exception {
        Path golden = GoldenModels.dir(model);
        Path f16 = writeRoundedToF16(golden, tmp.resolve("f16"), DType.F16);
        Path f32 = writeRoundedToF16(golden, tmp.resolve("f32"), DType.F32);
        try (Engine a = Engine.open(f16, EngineOptions.defaults().withThreads(2));
             Engine b = Engine.open(f32, EngineOptions.defaults().withThreads(2))) {
            for (GoldenModels.Case c : GoldenModels.cases(model)) {
                float[][] fromF16 = a.prefillLogits(c.tokens());
                float[][] fromF32 = b.prefillLogits(c.tokens());
                for (int t = 0; t < fromF16.length; t++) {
                    for (int v = 0; v < fromF16[t].length; v++) {
                        if (Float.floatToRawIntBits(fromF16[t][v]) != Float.floatToRawIntBits(fromF32[t][v])) {
                            assertThat(fromF16[t][v]).as("%s case %s row %d logit %d", model, c.name(), t, v)
                                    .isEqualTo(fromF32[t][v]);
                        }
                    }
                    // Rounding the weights to f16 moves the logits a little from the f32 reference.
                    assertThat(GoldenModels.relativeError(fromF16[t], c.logits()[t]))
                            .as("%s case %s row %d", model, c.name(), t).isLessThan(1e-2);
                }
            }
        }
    }

    private static Path writeRoundedToF16(Path golden, Path out, DType dtype) throws IOException {
        Files.createDirectories(out);
        Files.copy(golden.resolve("config.json"), out.resolve("config.json"));
        try (Checkpoint src = Checkpoint.open(golden);
             SafetensorsWriter writer = SafetensorsWriter.toCheckpoint(out, 0)) {
            List<String> names = List.copyOf(src.tensorNames());
            for (String name : names) {
                writer.declare(name, dtype, src.info(name).shape());
            }
            for (String name : names) {
                TensorInfo info = src.info(name);
                assertThat(info.dtype()).isEqualTo(DType.F32);
                MemorySegment data = src.map(info);
                float[] values = new float[Math.toIntExact(info.elementCount())];
                for (int i = 0; i < values.length; i++) {
                    float v = data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                    values[i] = Float.float16ToFloat(Float.floatToFloat16(v));
                }
                writer.write(name, values);
            }
            writer.finish();
        }
        return out;
    }
}
