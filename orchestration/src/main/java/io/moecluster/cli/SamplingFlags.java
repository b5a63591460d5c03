package io.moecluster.cli;

import io.moecluster.core.sampling.SamplingParams;
import picocli.CommandLine.Option;

/** Sampling flags, mapped one to one onto {@link SamplingParams}. */
final class SamplingFlags {
    @Option(names = "--max-tokens", defaultValue = "64", paramLabel = "N",
            description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T",
            description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K", description = "0 = off (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P", description = "1.0 = off (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--stop-token-ids", split = ",", paramLabel = "ID[,ID...]",
            description = "Extra token ids that end the completion (EOS always does).")
    int[] stopTokenIds = new int[0];

    @Option(names = "--ignore-eos", description = "Generate max-tokens tokens even past EOS (benchmarks).")
    boolean ignoreEos;

    SamplingParams params() {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos);
    }
}
