package io.moecluster.router;

import io.moecluster.proto.internal.v1.RunRequest;
import java.util.List;

/**
 * A validated request, from either API: what to send to an attention replica, and what the
 * router itself checks (stop sequences).
 */
public record PreparedRequest(String requestId, RunRequest run, List<String> stopSequences) {
    public PreparedRequest {
        stopSequences = List.copyOf(stopSequences);
    }

    public int promptTokens() {
        return run.getPromptTokenIdsCount();
    }

    /** Completions asked for (at least 1). */
    public int n() {
        return Math.max(1, run.getN());
    }

    public boolean logprobs() {
        return run.getLogprobs();
    }
}
