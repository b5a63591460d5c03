package io.moecluster.router;

import io.grpc.Status;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.Usage;

/** Where a {@link GenerationSession} delivers a completion: a stream (GenerateStream) or an aggregate (Generate). */
interface CompletionSink {
    /** One generated token and the text it completes (possibly empty). */
    void onToken(int tokenId, String text);

    /**
     * Text held back until the end (an incomplete character, or what looked like the start of a
     * stop sequence) that belongs to no new token; sent just before {@link #onFinished}.
     */
    void onTrailingText(String text);

    void onFinished(FinishReason reason, Usage usage);

    void onFailed(Status status);
}
