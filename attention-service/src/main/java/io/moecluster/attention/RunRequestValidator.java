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

    public RunRequestValidator(ModelConfig config, int maxSequenceLength) {
        this.vocabSize = config.vocabSize();
        this.maxSequenceLength = maxSequenceLength;
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
        return new SamplingParams(r.getTemperature(), r.getTopK(), topP == 0 ? 1.0 : topP, r.getSeed(),
                r.getMaxTokens(), stops, r.getIgnoreEos());
    }
}
