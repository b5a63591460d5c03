package io.moecluster.router;

import io.moecluster.proto.internal.v1.RunRequest;
import java.util.List;

/** A validated GenerateRequest: what to send to an attention replica, and what the router itself checks. */
record PreparedRequest(String requestId, RunRequest run, List<String> stopSequences) {
    int promptTokens() {
        return run.getPromptTokenIdsCount();
    }
}
