package io.moecluster.cli;

import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "make-random", mixinStandardHelpOptions = true,
        description = "Writes a random-weight model in the Hugging Face layout: config.json, model.safetensors "
                + "(or shards with an index), tokenizer.json, tokenizer_config.json, generation_config.json.")
final class MakeRandomCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--arch", required = true, paramLabel = "ARCH", converter = Converters.ArchitectureConverter.class,
            description = "mixtral, qwen2_moe or deepseek_v3.")
    Architecture arch;

    @Option(names = "--preset", required = true, paramLabel = "PRESET", converter = Converters.PresetConverter.class,
            description = "tiny (unit tests) or bench (the architecture's flagship scaled down: RakutenAI-2.0-8x7B for "
                    + "mixtral, ~1 GB in bf16; DeepSeek-V3 / Rakuten AI 3.0 for deepseek_v3, 64 experts top-6, ~0.9 GB).")
    Preset preset;

    @Option(names = "--dtype", required = true, paramLabel = "DTYPE", converter = Converters.DTypeConverter.class,
            description = "f32, f16, bf16 or f8_e4m3 (also fp8: linear weights as FP8 with F32 weight_scale_inv "
                    + "blocks and quantization_config, the rest bf16, as DeepSeek-V3 ships).")
    DType dtype;

    @Option(names = "--seed", required = true, paramLabel = "N", description = "Seed: the same seed gives the same bytes.")
    long seed;

    @Option(names = "--max-shard-bytes", defaultValue = "0", paramLabel = "BYTES",
            description = "Split the weights into shards of at most this size with model.safetensors.index.json; "
                    + "0 writes one file (default).")
    long maxShardBytes;

    @Option(names = "--hidden-size", defaultValue = "0", paramLabel = "N",
            description = "Hidden size instead of the preset's (0 keeps it); the head count stays, so grouped-query "
                    + "heads get hidden/heads dimensions.")
    int hiddenSize;

    @Option(names = "--intermediate-size", defaultValue = "0", paramLabel = "N",
            description = "Expert FFN width instead of the preset's (0 keeps it): Mixtral's intermediate_size, "
                    + "moe_intermediate_size for qwen2_moe and deepseek_v3.")
    int intermediateSize;

    @Option(names = "--layers", defaultValue = "0", paramLabel = "N",
            description = "Number of layers instead of the preset's (0 keeps it).")
    int layers;

    @Option(names = "--force", description = "Replace the model files in a non-empty OUT_DIR.")
    boolean force;

    @Parameters(index = "0", paramLabel = "OUT_DIR", description = "Directory to write (created if missing).")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (maxShardBytes < 0) {
            throw new IllegalArgumentException("--max-shard-bytes must be >= 0, got " + maxShardBytes);
        }
        try {
            preset.config(arch).withSizes(hiddenSize, intermediateSize, layers);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage(), e);
        }
        long start = System.nanoTime();
        ModelConfig config = RandomModelGenerator.generate(arch, preset, dtype, seed, out, force, maxShardBytes,
                hiddenSize, intermediateSize, layers);
        spec.commandLine().getOut().printf(Locale.ROOT, "wrote %s (%s, %s, %.2f B parameters) in %.1f s%n", out,
                config.architecture().modelType(), dtype, RandomModelGenerator.parameterCount(config) / 1e9,
                (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
