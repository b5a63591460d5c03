package io.moecluster.router;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.internal.v1.RunRequest;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.SamplingParameters;
import java.util.UUID;

/** Turns a public GenerateRequest into an attention RunRequest, refusing bad fields by name. */
final class GenerateRequestValidator {
    static final int DEFAULT_MAX_TOKENS = 256;

    private final ModelConfig config;
    private final TextTokenizer tokenizer;
    private final int maxSequenceLength;

    GenerateRequestValidator(ModelConfig config, TextTokenizer tokenizer, int maxSequenceLength) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.maxSequenceLength = maxSequenceLength;
    }

    PreparedRequest prepare(GenerateRequest r) throws InvalidRequestException {
        int[] prompt = prompt(r);
        SamplingParameters s = r.getSampling();
        if (!Float.isFinite(s.getTemperature()) || s.getTemperature() < 0) {
            throw new InvalidRequestException("sampling.temperature must be a finite number >= 0 (0 = greedy), got "
                    + s.getTemperature());
        }
        if (s.getTopK() < 0) {
            throw new InvalidRequestException("sampling.top_k must be >= 0 (0 = off), got " + s.getTopK());
        }
        if (!(s.getTopP() >= 0 && s.getTopP() <= 1)) {
            throw new InvalidRequestException("sampling.top_p must be in [0, 1] (0 or 1 = off), got " + s.getTopP());
        }
        if (s.getMaxTokens() < 0) {
            throw new InvalidRequestException("sampling.max_tokens must be >= 0 (0 = default "
                    + DEFAULT_MAX_TOKENS + "), got " + s.getMaxTokens());
        }
        int room = maxSequenceLength - prompt.length;
        if (room < 1) {
            throw new InvalidRequestException("input is " + prompt.length + " tokens, which leaves no room to generate"
                    + " within max-seq-len " + maxSequenceLength);
        }
        int maxTokens = Math.min(s.getMaxTokens() == 0 ? DEFAULT_MAX_TOKENS : s.getMaxTokens(), room);
        for (int i = 0; i < s.getStopTokenIdsCount(); i++) {
            int id = s.getStopTokenIds(i);
            if (id < 0 || id >= config.vocabSize()) {
                throw new InvalidRequestException("sampling.stop_token_ids[" + i + "] = " + id
                        + " is outside the vocabulary [0, " + config.vocabSize() + ")");
            }
        }
        for (int i = 0; i < s.getStopSequencesCount(); i++) {
            if (s.getStopSequences(i).isEmpty()) {
                throw new InvalidRequestException("sampling.stop_sequences[" + i + "] is empty");
            }
        }
        String requestId = r.getRequestId().isEmpty() ? UUID.randomUUID().toString() : r.getRequestId();
        RunRequest.Builder run = RunRequest.newBuilder()
                .setRequestId(requestId)
                .setTemperature(s.getTemperature())
                .setTopK(s.getTopK())
                .setTopP(s.getTopP())
                .setSeed(s.getSeed())
                .setMaxTokens(maxTokens)
                .addAllStopTokenIds(s.getStopTokenIdsList())
                .setIgnoreEos(s.getIgnoreEos());
        for (int id : prompt) {
            run.addPromptTokenIds(id);
        }
        return new PreparedRequest(requestId, run.build(), s.getStopSequencesList());
    }

    private int[] prompt(GenerateRequest r) throws InvalidRequestException {
        switch (r.getInputCase()) {
            case TEXT -> {
                if (r.getText().isEmpty()) {
                    throw new InvalidRequestException("text is empty");
                }
                return tokenizer.encode(r.getText(), !r.hasAddBos() || r.getAddBos());
            }
            case TOKEN_IDS -> {
                int n = r.getTokenIds().getIdsCount();
                if (n == 0) {
                    throw new InvalidRequestException("token_ids.ids is empty");
                }
                int[] ids = new int[n];
                for (int i = 0; i < n; i++) {
                    int id = r.getTokenIds().getIds(i);
                    if (id < 0 || id >= config.vocabSize()) {
                        throw new InvalidRequestException("token_ids.ids[" + i + "] = " + id
                                + " is outside the vocabulary [0, " + config.vocabSize() + ")");
                    }
                    ids[i] = id;
                }
                return ids;
            }
            default -> throw new InvalidRequestException("input is missing: set text or token_ids");
        }
    }
}
