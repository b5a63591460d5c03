package io.moecluster.cli;

import io.moecluster.core.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** Sampling flags, mapped one to one onto {@link SamplingParams} (and stop texts, which are matched on the text). */
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

    @Option(names = "--stop", paramLabel = "TEXT",
            description = "Text that ends the completion (not printed); repeat for several.")
    List<String> stop = new ArrayList<>();

    @Option(names = "--min-p", defaultValue = "0", paramLabel = "P",
            description = "Keep tokens at least P times as likely as the most likely one; 0 = off (default: ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--presence-penalty", defaultValue = "0", paramLabel = "X",
            description = "Subtracted from the logit of each token already generated; -2 to 2, 0 = off (default: ${DEFAULT-VALUE}).")
    float presencePenalty;

    @Option(names = "--frequency-penalty", defaultValue = "0", paramLabel = "X",
            description = "Subtracted per time a token was already generated; -2 to 2, 0 = off (default: ${DEFAULT-VALUE}).")
    float frequencyPenalty;

    @Option(names = "--repetition-penalty", defaultValue = "1", paramLabel = "X",
            description = "Divides positive (multiplies negative) logits of prompt and generated tokens; 1 = off (default: ${DEFAULT-VALUE}).")
    float repetitionPenalty;

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
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("--stop must not be empty");
            }
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("--min-p must be in [0, 1] (0 = off), got " + minP);
        }
        if (!(Math.abs(presencePenalty) <= 2)) {
            throw new IllegalArgumentException("--presence-penalty must be in [-2, 2] (0 = off), got " + presencePenalty);
        }
        if (!(Math.abs(frequencyPenalty) <= 2)) {
            throw new IllegalArgumentException("--frequency-penalty must be in [-2, 2] (0 = off), got " + frequencyPenalty);
        }
        if (!(repetitionPenalty > 0) || !Float.isFinite(repetitionPenalty)) {
            throw new IllegalArgumentException("--repetition-penalty must be a number > 0 (1 = off), got " + repetitionPenalty);
        }
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, minP,
                presencePenalty, frequencyPenalty, repetitionPenalty, SamplingParams.NO_LOGPROBS);
    }
}
