package io.moecluster.cli;

import io.moecluster.core.engine.EngineOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The model and engine-sizing flags shared by the commands that run a model. */
final class EngineFlags {
    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json).")
    Path model;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "Compute threads; 0 = one per core (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--max-batch-tokens", defaultValue = "" + EngineOptions.DEFAULT_MAX_BATCH_TOKENS, paramLabel = "N",
            description = "Most tokens in one forward step (default: ${DEFAULT-VALUE}).")
    int maxBatchTokens;

    @Option(names = "--max-seq-len", defaultValue = "0", paramLabel = "N",
            description = "Most positions per sequence; 0 = min(max_position_embeddings, "
                    + EngineOptions.DEFAULT_MAX_SEQ_LEN_CAP + ").")
    int maxSeqLen;

    /** The commands that run a model here need --model; picocli cannot require it where --server is the alternative. */
    java.nio.file.Path requireModel(picocli.CommandLine.Model.CommandSpec spec) {
        if (model == null) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--model=DIR'");
        }
        return model;
    }

    EngineOptions options() {
        return new EngineOptions(threads, maxBatchTokens, maxSeqLen);
    }
}
