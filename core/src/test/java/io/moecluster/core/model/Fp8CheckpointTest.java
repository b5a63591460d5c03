package io.moecluster.core.model;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * FP8 block checkpoints serve every architecture: a generated F8_E4M3 model gives the logits of
 * the same model with its weights dequantised (fp8 x weight_scale_inv) and stored as F32, to f32
 * rounding (bound 1e-5 relative per row), with every linear weight in the FP8 format, kept mapped.
 */
class Fp8CheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(Architecture.class)
    void fp8CheckpointsServeEveryArchitecture(Architecture arch) throws Exception {
        Path fp8 = tmp.resolve("fp8");
        Path dequantized = tmp.resolve("dequantized");
        ModelConfig config = RandomModelGenerator.generate(arch, Preset.TINY, DType.F8_E4M3, 3, fp8);
        try (Checkpoint ckpt = Checkpoint.open(fp8); WeightLoader loader = new WeightLoader(ckpt, config)) {
            int moe = config.isMoeLayer(0) ? 0 : 1;
            assertThat(loader.expert(moe, 1).down().format()).isEqualTo("F8_E4M3");
            assertThat(loader.expert(moe, 1).down().isMapped()).isTrue();
            assertThat(loader.router(moe).format()).isEqualTo("BF16");
            assertThat(loader.lmHead().format()).isEqualTo("BF16");
        }
        writeDequantized(fp8, dequantized, config.quantization());
        int[] tokens = {1, 87, 107, 104, 35, 102, 100, 115, 124, 101, 100, 117, 100, 35, 108, 118};
        try (Engine a = Engine.open(dequantized, EngineOptions.defaults().withThreads(2));
             Engine b = Engine.open(fp8, EngineOptions.defaults().withThreads(2))) {
            float[][] exact = a.prefillLogits(tokens);
            float[][] quantized = b.prefillLogits(tokens);
            for (int t = 0; t < tokens.length; t++) {
                assertThat(GoldenModels.relativeError(quantized[t], exact[t])).as("%s row %d", arch, t)
                        .isLessThan(1e-5);
            }
        }
    }

    /** The checkpoint of {@code from} with FP8 weights multiplied out and everything stored as F32. */
    private static void writeDequantized(Path from, Path to, BlockQuantization q) throws Exception {
        Files.createDirectories(to);
        ObjectNode config = (ObjectNode) JSON.readTree(Files.readString(from.resolve("config.json")));
        config.remove("quantization_config");
        Files.writeString(to.resolve("config.json"), config.toPrettyString());
        try (Checkpoint src = Checkpoint.open(from); SafetensorsWriter w = SafetensorsWriter.toCheckpoint(to, 0)) {
            List<String> names = new ArrayList<>();
            for (String n : src.tensorNames()) {
                if (!n.endsWith("_scale_inv")) {
                    names.add(n);
                    w.declare(n, DType.F32, src.info(n).shape());
                }
            }
            for (String n : names) {
                TensorInfo info = src.info(n);
                MemorySegment data = src.map(info);
                float[] v = new float[(int) info.elementCount()];
                if (info.dtype() == DType.F8_E4M3) {
                    int cols = (int) info.dim(1);
                    int scaleCols = (cols + q.blockCols() - 1) / q.blockCols();
                    MemorySegment scales = src.map(src.info(n + "_scale_inv"));
                    for (int i = 0; i < v.length; i++) {
                        int r = i / cols;
                        int c = i % cols;
                        float s = scales.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED,
                                (long) (r / q.blockRows()) * scaleCols + c / q.blockCols());
                        v[i] = Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, i)) * s;
                    }
                } else if (info.dtype() == DType.BF16) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = Bf16.toFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                    }
                } else {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                    }
                }
                w.write(n, v);
            }
            w.finish();
        }
    }
}
