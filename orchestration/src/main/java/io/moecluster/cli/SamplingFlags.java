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

    /** The flags as SamplingParams; a bad value fails naming its flag (exit 1, one line). */
    SamplingParams params() {
        if (!Float.isFinite(temperature) || temperature < 0) {
            throw new IllegalArgumentException("--temperature must be a finite number >= 0 (0 = greedy), got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("--top-k must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("--top-p must be in (0, 1] (1 = off), got " + topP);
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("--max-tokens must be >= 1, got " + maxTokens);
        }
        for (int id : stopTokenIds) {
            if (id < 0) {
                throw new IllegalArgumentException("--stop-token-ids must be token ids >= 0, got " + id);
            }
        }
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos);
    }
}
