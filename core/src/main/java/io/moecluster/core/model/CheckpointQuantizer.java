package io.moecluster.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Int8Matrix;
import io.moecluster.core.kernels.Int8Quantizer;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.SafetensorsWriter;
import io.moecluster.core.safetensors.TensorInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Converts a checkpoint of any format this engine reads (F32, BF16, F16, FP8 blocks, int8) into
 * the int8 format ({@code moe model quantize --format int8}):
 *
 * <ul>
 *   <li>every linear layer, the embeddings and the LM head (2-D {@code *.weight} tensors but the
 *       routers' gates, which pick the experts and stay as they are, as llama.cpp keeps
 *       {@code ffn_gate_inp}) become {@code <name>}, I8 {@code [rows, cols]}, followed by
 *       {@code <name>_scale_inv}, F32 {@code [rows, ceil(cols / 32)]}: one multiplier per block of
 *       32 weights along a row ({@link Int8Quantizer}), so {@code w = q * scale};
 *   <li>every other tensor (norms, biases, routers) is copied in its own type; an FP8 source's
 *       {@code _scale_inv} tensors are dropped (its weights are dequantised first, in f32);
 *   <li>{@code config.json} is the source's with {@code quantization_config} set to
 *       {@code {"quant_method": "int8", "fmt": "q8_0", "weight_block_size": [1, 32]}}, the marker the
 *       loader reads; the other files of the directory (tokenizer, generation config) are copied.
 * </ul>
 */
public final class CheckpointQuantizer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointQuantizer() {
    }

    /** What one conversion wrote. */
    public record Result(ModelConfig config, int quantizedTensors, int copiedTensors, long bytesBefore, long bytesAfter) {
    }

    /** Whether {@code name} of {@code shape} becomes int8 blocks: 2-D weights, routers' gates excepted. */
    static boolean quantized(String name, long[] shape) {
        return shape.length == 2 && name.endsWith(".weight") && !name.endsWith("mlp.gate.weight")
                && !name.endsWith("block_sparse_moe.gate.weight") && !name.endsWith("shared_expert_gate.weight");
    }

    /**
     * Writes the int8 form of the model in {@code in} to {@code out} (created if missing; it must be
     * empty, or {@code overwrite} set to replace the model files in it, and not {@code in}).
     *
     * @throws ModelFormatException naming the tensor when a weight is not finite or a tensor's type
     *         cannot be copied
     */
    public static Result quantize(Path in, Path out, boolean overwrite, long maxShardBytes) throws IOException {
        if (Files.exists(out) && Files.isSameFile(in, out)) {
            throw new IllegalArgumentException("the output directory must differ from the input " + in);
        }
        ModelConfig config = ModelConfig.load(in);
        RandomModelGenerator.prepareOutDir(out, overwrite);
        int quantizedCount = 0;
        int copied = 0;
        long before = 0;
        try (Checkpoint checkpoint = Checkpoint.open(in);
             WeightLoader scales = new WeightLoader(checkpoint, config);
             Arena arena = Arena.ofConfined();
             SafetensorsWriter writer = SafetensorsWriter.toCheckpoint(out, maxShardBytes)) {
            Set<String> companions = new TreeSet<>();
            for (String name : checkpoint.tensorNames()) {
                if (checkpoint.info(name).dtype().isBlockQuantized()) {
                    companions.add(TensorNames.scaleInv(name));
                }
            }
            List<String> names = new ArrayList<>();
            for (String name : checkpoint.tensorNames()) {
                TensorInfo info = checkpoint.info(name);
                before += info.byteSize();
                if (companions.contains(name)) {
                    continue;
                }
                names.add(name);
                long[] shape = info.shape();
                if (quantized(name, shape)) {
                    writer.declare(name, DType.I8, shape);
                    writer.declare(TensorNames.scaleInv(name), DType.F32, shape[0], Int8Matrix.blocks((int) shape[1]));
                } else if (info.dtype().isBlockQuantized()) {
                    throw new ModelFormatException(info.file() + ": tensor '" + name + "' is " + info.dtype() + " "
                            + info.shapeString() + "; only 2-D weights can be block-quantized");
                } else {
                    writer.declare(name, info.dtype(), shape);
                }
            }
            for (String name : names) {
                TensorInfo info = checkpoint.info(name);
                if (quantized(name, info.shape())) {
                    writeQuantized(writer, checkpoint, info, scales, arena);
                    quantizedCount++;
                } else {
                    MemorySegment data = checkpoint.map(info);
                    DType type = info.dtype();
                    writer.write(name, (first, values, count) -> {
                        for (int i = 0; i < count; i++) {
                            values[i] = element(data, type, first + i);
                        }
                    });
                    copied++;
                }
            }
            writer.finish();
        }
        copyOtherFiles(in, out);
        ModelConfig quantizedConfig = config.withQuantization(BlockQuantization.INT8);
        Files.writeString(out.resolve("config.json"), configWithMarker(in.resolve("config.json")));
        long after = 0;
        try (Checkpoint written = Checkpoint.open(out)) {
            for (String name : written.tensorNames()) {
                after += written.info(name).byteSize();
            }
        }
        return new Result(quantizedConfig, quantizedCount, copied, before, after);
    }

    /** Rows widened to f32 by the source format's own row copy, quantized, written; then the scales. */
    private static void writeQuantized(SafetensorsWriter writer, Checkpoint checkpoint, TensorInfo info,
                                       WeightLoader scales, Arena arena) throws IOException {
        String name = info.name();
        if (info.dim(0) > Integer.MAX_VALUE || info.dim(1) > Integer.MAX_VALUE) {
            throw new ModelFormatException(info.file() + ": tensor '" + name + "' " + info.shapeString() + " is too large");
        }
        int rows = (int) info.dim(0);
        int cols = (int) info.dim(1);
        WeightMatrix source = WeightMatrix.of(name, checkpoint.map(info), info.dtype(), rows, cols, scales);
        MemorySegment rowBuf = arena.allocate((long) Math.max(cols, 1) * 4, 64);
        float[] row = new float[cols];
        float[] q = new float[cols];
        int blocks = Int8Matrix.blocks(cols);
        float[] allScales = new float[Math.multiplyExact(rows, blocks)];
        float[] rowScales = new float[blocks];
        int[] decoded = {-1};
        writer.write(name, (first, values, count) -> {
            for (int i = 0; i < count; ) {
                long e = first + i;
                int r = (int) (e / cols);
                int c = (int) (e % cols);
                if (r != decoded[0]) {
                    source.copyRowTo(r, rowBuf, 0);
                    MemorySegment.copy(rowBuf, ValueLayout.JAVA_FLOAT, 0, row, 0, cols);
                    int bad = Int8Quantizer.quantizeRow(row, cols, q, rowScales);
                    if (bad >= 0) {
                        throw new ModelFormatException(info.file() + ": tensor '" + name + "' holds " + row[bad]
                                + " at [" + r + ", " + bad + "]; int8 blocks need finite weights");
                    }
                    System.arraycopy(rowScales, 0, allScales, r * blocks, blocks);
                    decoded[0] = r;
                }
                int n = Math.min(count - i, cols - c);
                System.arraycopy(q, c, values, i, n);
                i += n;
            }
        });
        writer.write(TensorNames.scaleInv(name), allScales);
    }

    /** Element {@code i} of an unquantized tensor as f32 (exact: each type widens to f32 and back unchanged). */
    private static float element(MemorySegment data, DType type, long i) {
        return switch (type) {
            case F32 -> data.getAtIndex(Kernels.F32, i);
            case BF16 -> Bf16.toFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case F16 -> Float.float16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case F8_E4M3, I8 -> throw new IllegalStateException("block-quantized tensors are converted, not copied");
        };
    }

    /** The source's config.json with quantization_config replaced by the int8 marker. */
    private static String configWithMarker(Path config) throws IOException {
        JsonNode root = JSON.readTree(Files.readString(config));
        if (!(root instanceof ObjectNode o)) {
            throw new ModelFormatException(config + ": not a JSON object");
        }
        ObjectNode q = JSON.createObjectNode();
        q.put("quant_method", BlockQuantization.INT8_METHOD);
        q.put("fmt", BlockQuantization.INT8_FMT);
        q.putArray("weight_block_size").add(BlockQuantization.INT8.blockRows()).add(BlockQuantization.INT8.blockCols());
        o.set("quantization_config", q);
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    }

    /** Tokenizer, generation config and whatever else the directory holds beside the weights and config.json. */
    private static void copyOtherFiles(Path in, Path out) throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(in)) {
            for (Path p : entries) {
                String f = p.getFileName().toString();
                if (!Files.isRegularFile(p) || f.endsWith(".safetensors") || f.equals(Checkpoint.INDEX_FILE)
                        || f.equals("config.json")) {
                    continue;
                }
                Files.copy(p, out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
