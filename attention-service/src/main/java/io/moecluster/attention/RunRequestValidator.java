package io.moecluster.attention;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.proto.internal.v1.RunRequest;

/**
 * Checks a {@link RunRequest} against the model and the replica's limits before it reaches the
 * loop, so that every bad field is answered at once and by name.
 */
public final class RunRequestValidator {
    private final int vocabSize;
    private final int maxSequenceLength;
    private final int maxRunning;

    public RunRequestValidator(ModelConfig config, int maxSequenceLength) {
        this(config, maxSequenceLength, Integer.MAX_VALUE);
    }

    /** @param maxRunning the largest n a request may ask for */
    public RunRequestValidator(ModelConfig config, int maxSequenceLength, int maxRunning) {
        this.vocabSize = config.vocabSize();
        this.maxSequenceLength = maxSequenceLength;
        this.maxRunning = maxRunning;
    }

    public int[] prompt(RunRequest r) throws InvalidFieldException {
        if (r.getPromptTokenIdsCount() == 0) {
            throw new InvalidFieldException("prompt_token_ids is empty");
        }
        int[] prompt = new int[r.getPromptTokenIdsCount()];
        for (int i = 0; i < prompt.length; i++) {
            int id = r.getPromptTokenIds(i);
            if (id < 0 || id >= vocabSize) {
                throw new InvalidFieldException("prompt_token_ids[" + i + "] = " + id
                        + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            prompt[i] = id;
        }
        return prompt;
    }

    public SamplingParams sampling(RunRequest r) throws InvalidFieldException {
        if (!Float.isFinite(r.getTemperature()) || r.getTemperature() < 0) {
            throw new InvalidFieldException("temperature must be a finite number >= 0 (0 = greedy), got "
                    + r.getTemperature());
        }
        if (r.getTopK() < 0) {
            throw new InvalidFieldException("top_k must be >= 0 (0 = off), got " + r.getTopK());
        }
        float topP = r.getTopP();
        if (!(topP >= 0 && topP <= 1)) {
            throw new InvalidFieldException("top_p must be in [0, 1] (0 or 1 = off), got " + topP);
        }
        if (r.getMaxTokens() < 1) {
            throw new InvalidFieldException("max_tokens must be >= 1, got " + r.getMaxTokens());
        }
        long needed = (long) r.getPromptTokenIdsCount() + r.getMaxTokens();
        if (needed > maxSequenceLength) {
            throw new InvalidFieldException("prompt_token_ids (" + r.getPromptTokenIdsCount() + " tokens) + max_tokens ("
                    + r.getMaxTokens() + ") = " + needed + " exceeds max-seq-len " + maxSequenceLength);
        }
        int[] stops = new int[r.getStopTokenIdsCount()];
        for (int i = 0; i < stops.length; i++) {
            int id = r.getStopTokenIds(i);
            if (id < 0 || id >= vocabSize) {
                throw new InvalidFieldException("stop_token_ids[" + i + "] = " + id
                        + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            stops[i] = id;
        }
        if (!(r.getMinP() >= 0 && r.getMinP() <= 1)) {
            throw new InvalidFieldException("min_p must be in [0, 1] (0 = off), got " + r.getMinP());
        }
        if (!Float.isFinite(r.getPresencePenalty())) {
            throw new InvalidFieldException("presence_penalty must be a finite number, got " + r.getPresencePenalty());
        }
        if (!Float.isFinite(r.getFrequencyPenalty())) {
            throw new InvalidFieldException("frequency_penalty must be a finite number, got " + r.getFrequencyPenalty());
        }
        float repetition = r.getRepetitionPenalty() == 0 ? 1 : r.getRepetitionPenalty();
        if (!(repetition > 0) || !Float.isFinite(repetition)) {
            throw new InvalidFieldException("repetition_penalty must be a finite number > 0 (1 = off), got "
                    + r.getRepetitionPenalty());
        }
        int logprobs = SamplingParams.NO_LOGPROBS;
        if (r.getLogprobs()) {
            if (r.getTopLogprobs() < 0 || r.getTopLogprobs() > SamplingParams.MAX_TOP_LOGPROBS) {
                throw new InvalidFieldException("top_logprobs must be in [0, " + SamplingParams.MAX_TOP_LOGPROBS
                        + "], got " + r.getTopLogprobs());
            }
            logprobs = r.getTopLogprobs();
        }
        return new SamplingParams(r.getTemperature(), r.getTopK(), topP == 0 ? 1.0 : topP, r.getSeed(),
                r.getMaxTokens(), stops, r.getIgnoreEos(), r.getMinP(), r.getPresencePenalty(),
                r.getFrequencyPenalty(), repetition, logprobs);
    }

    /** Completions to generate: 0 means 1; at most the replica's running sequences. */
    public int n(RunRequest r) throws InvalidFieldException {
        int n = r.getN() == 0 ? 1 : r.getN();
        if (n < 1 || n > maxRunning) {
            throw new InvalidFieldException("n must be in [1, " + maxRunning
                    + "] (this attention replica's max running sequences), got " + r.getN());
        }
        return n;
    }
}
