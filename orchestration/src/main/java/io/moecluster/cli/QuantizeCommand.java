package io.moecluster.cli;

import io.moecluster.core.model.CheckpointQuantizer;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Writes a model directory's weights in another format. int8: every linear layer, the embeddings "
                + "and the LM head as I8 in symmetric blocks of 32 along a row, each block with an F32 multiplier in "
                + "<name>_scale_inv (llama.cpp's Q8_0 with an f32 scale; 1.125 bytes per weight); routers, norms and "
                + "biases copied as they are; config.json marked with quantization_config {quant_method: int8, fmt: "
                + "q8_0, weight_block_size: [1, 32]}. The input may be F32, BF16, F16 or FP8.")
final class QuantizeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--format", required = true, paramLabel = "FORMAT", description = "int8 (the only one so far).")
    String format;

    @Option(names = "--max-shard-bytes", defaultValue = "0", paramLabel = "BYTES",
            description = "Split the weights into shards of at most this size with model.safetensors.index.json; "
                    + "0 writes one file (default).")
    long maxShardBytes;

    @Option(names = "--force", description = "Replace the model files in a non-empty OUT_DIR.")
    boolean force;

    @Parameters(index = "0", paramLabel = "IN_DIR", description = "Hugging Face model directory to read.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT_DIR", description = "Directory to write (created if missing).")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (!format.equalsIgnoreCase("int8")) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--format " + format + " is not supported (only int8)");
        }
        if (maxShardBytes < 0) {
            throw new IllegalArgumentException("--max-shard-bytes must be >= 0, got " + maxShardBytes);
        }
        long start = System.nanoTime();
        CheckpointQuantizer.Result r = CheckpointQuantizer.quantize(in, out, force, maxShardBytes);
        spec.commandLine().getOut().printf(Locale.ROOT,
                "wrote %s (int8: %d tensors quantized, %d copied; %.1f MiB -> %.1f MiB) in %.1f s%n", out,
                r.quantizedTensors(), r.copiedTensors(), r.bytesBefore() / 1048576.0, r.bytesAfter() / 1048576.0,
                (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
