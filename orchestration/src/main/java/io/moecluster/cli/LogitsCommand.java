package io.moecluster.cli;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.io.NpyFile;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "logits", mixinStandardHelpOptions = true,
        description = "Writes the logits after every token of a sequence, computed by one prefill, "
                + "as a float32 .npy of shape [tokens, vocab].")
final class LogitsCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    EngineFlags engine;

    @Option(names = "--tokens", required = true, split = ",", paramLabel = "ID[,ID...]",
            description = "Token ids, comma-separated.")
    int[] tokens;

    @Option(names = "--out", required = true, paramLabel = "FILE.npy", description = "Output file.")
    Path out;

    @Override
    public Integer call() throws Exception {
        try (Engine e = Engine.open(engine.requireModel(spec), engine.options())) {
            int vocab = e.config().vocabSize();
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] < 0 || tokens[i] >= vocab) {
                    throw new IllegalArgumentException("--tokens: id " + tokens[i] + " at index " + i
                            + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            if (tokens.length > e.transformer().maxPositions()) {
                throw new IllegalArgumentException("--tokens: " + tokens.length + " tokens exceed max-seq-len "
                        + e.transformer().maxPositions());
            }
            NpyFile.writeF32(out, e.prefillLogits(tokens));
        }
        return 0;
    }
}
