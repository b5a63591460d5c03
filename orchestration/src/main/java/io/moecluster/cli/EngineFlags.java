package io.moecluster.cli;

import io.moecluster.core.engine.EngineOptions;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** The model and engine-sizing flags shared by the commands that run a model (or its MoE side). */
final class EngineFlags {
    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json).")
    Path model;

    @Mixin
    ComputeFlags compute;

    @Option(names = "--max-batch-tokens", defaultValue = "" + EngineOptions.DEFAULT_MAX_BATCH_TOKENS, paramLabel = "N",
            description = "Most tokens in one forward step; longer prompts are prefilled in chunks (default: ${DEFAULT-VALUE}).")
    int maxBatchTokens;

    @Option(names = "--max-seq-len", defaultValue = "0", paramLabel = "N",
            description = "Most positions per sequence; 0 = min(max_position_embeddings, "
                    + EngineOptions.DEFAULT_MAX_SEQ_LEN_CAP + ").")
    int maxSeqLen;

    /** The commands that run a model here need --model; picocli cannot require it where --server is the alternative. */
    Path requireModel(CommandSpec spec) {
        if (model == null) {
            throw new ParameterException(spec.commandLine(), "Missing required option: '--model=DIR'");
        }
        return model;
    }

    EngineOptions options() {
        return new EngineOptions(compute.threads, maxBatchTokens, maxSeqLen, compute.device);
    }
}
