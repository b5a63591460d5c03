package io.moecluster.router;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.moecluster.core.tokenizer.StreamingDecoder;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.Usage;

/**
 * One admitted request's attention call: decodes token deltas, watches for stop sequences and
 * ends exactly once (finished, failed or cancelled), giving its admission slot back.
 *
 * <p>Synchronized: attention events arrive on the channel's executor, the client's cancellation
 * on a server thread.
 */
final class GenerationSession implements ClientResponseObserver<RunRequest, RunEvent> {
    private final PreparedRequest request;
    private final StreamingDecoder decoder;
    private final StopSequenceMatcher stops;
    private final CompletionSink sink;
    private final Runnable releaseSlot;
    private final long startNanos = System.nanoTime();
    private final StringBuilder text = new StringBuilder();
    private ClientCallStreamObserver<RunRequest> call;
    /** Chars of {@link #text} already delivered. */
    private int emitted;
    private int completionTokens;
    private double timeToFirstTokenMs;
    private boolean ended;

    private final RequestMetrics metrics;
    private long lastTokenNanos;

    GenerationSession(PreparedRequest request, TextTokenizer tokenizer, CompletionSink sink, Runnable releaseSlot,
                      RequestMetrics metrics) {
        this.metrics = metrics;
        this.request = request;
        this.decoder = new StreamingDecoder(tokenizer);
        this.stops = new StopSequenceMatcher(request.stopSequences());
        this.sink = sink;
        this.releaseSlot = releaseSlot;
    }

    @Override
    public synchronized void beforeStart(ClientCallStreamObserver<RunRequest> requestStream) {
        this.call = requestStream;
    }

    @Override
    public synchronized void onNext(RunEvent event) {
        if (ended) {
            return;
        }
        switch (event.getEventCase()) {
            case TOKEN_ID -> onToken(event.getTokenId());
            case FINISH_REASON -> {
                text.append(decoder.finish());
                FinishReason reason = switch (event.getFinishReason()) {
                    case "stop" -> FinishReason.FINISH_REASON_STOP;
                    case "length" -> FinishReason.FINISH_REASON_LENGTH;
                    default -> FinishReason.FINISH_REASON_UNSPECIFIED;
                };
                if (!deliverUpToStop(-1)) {
                    // The held-back tail (a stop-sequence prefix that never completed) goes out now.
                    deliver(-1, text.length());
                    finish(reason);
                }
            }
            default -> { }
        }
    }

    private void onToken(int tokenId) {
        completionTokens++;
        long now = System.nanoTime();
        if (completionTokens == 1) {
            timeToFirstTokenMs = (now - startNanos) / 1e6;
            metrics.firstToken(timeToFirstTokenMs);
        } else {
            metrics.tokenGap((now - lastTokenNanos) / 1e6);
        }
        lastTokenNanos = now;
        try {
            text.append(decoder.append(tokenId));
        } catch (IllegalArgumentException e) {
            // An id the tokenizer cannot decode (a padding row of the vocabulary): no text.
        }
        if (!deliverUpToStop(tokenId)) {
            deliver(tokenId, stops.safeLength(text));
        }
    }

    /** If a stop sequence has appeared, delivers the text before it, ends the request and returns true. */
    private boolean deliverUpToStop(int tokenId) {
        int match = stops.firstMatch(text, emitted);
        if (match < 0) {
            return false;
        }
        text.setLength(match);
        deliver(tokenId, match);
        finish(FinishReason.FINISH_REASON_STOP_SEQUENCE);
        if (call != null) {
            call.cancel("stop sequence matched", null);
        }
        return true;
    }

    /** Sends the text up to {@code end} with {@code tokenId}; tokenId < 0 only flushes text that is left. */
    private void deliver(int tokenId, int end) {
        String delta = end > emitted ? text.substring(emitted, end) : "";
        emitted = Math.max(emitted, end);
        if (tokenId >= 0) {
            sink.onToken(tokenId, delta);
        } else if (!delta.isEmpty()) {
            sink.onTrailingText(delta);
        }
    }

    private void finish(FinishReason reason) {
        ended = true;
        releaseSlot.run();
        metrics.finished(reason, completionTokens);
        sink.onFinished(reason, Usage.newBuilder()
                .setPromptTokens(request.promptTokens())
                .setCompletionTokens(completionTokens)
                .setTimeToFirstTokenMs(timeToFirstTokenMs)
                .setTotalTimeMs((System.nanoTime() - startNanos) / 1e6)
                .build());
    }

    @Override
    public synchronized void onError(Throwable t) {
        if (ended) {
            return;
        }
        ended = true;
        releaseSlot.run();
        metrics.failed(completionTokens);
        Status s = Status.fromThrowable(t);
        Status out = switch (s.getCode()) {
            // The replica judged the request itself (a limit the router did not check).
            case INVALID_ARGUMENT, RESOURCE_EXHAUSTED -> s;
            default -> Status.UNAVAILABLE.withDescription("attention replica failed for request " + request.requestId()
                    + ": " + s.getCode() + (s.getDescription() == null ? "" : " " + s.getDescription()));
        };
        sink.onFailed(out);
    }

    @Override
    public synchronized void onCompleted() {
        if (!ended) {
            onError(Status.UNAVAILABLE.withDescription("stream ended without a finish reason").asRuntimeException());
        }
    }

    /** The client went away: stop the attention run and give the slot back. */
    synchronized void cancel() {
        if (ended) {
            return;
        }
        ended = true;
        releaseSlot.run();
        if (call != null) {
            call.cancel("client cancelled", null);
        }
    }
}
