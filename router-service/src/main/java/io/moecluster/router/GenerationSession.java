package io.moecluster.router;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.moecluster.core.tokenizer.StreamingDecoder;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import io.moecluster.proto.internal.v1.RunTopLogprob;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.TokenLogprobs;
import io.moecluster.proto.v1.TopLogprob;
import io.moecluster.proto.v1.Usage;

/**
 * One admitted request's attention call: decodes each completion's token deltas, watches for stop
 * sequences and ends exactly once (finished, failed or cancelled), giving its admission slot back.
 * A request of n completions has n of everything per completion; it ends when the last one does.
 *
 * <p>Synchronized: attention events arrive on the channel's executor, the client's cancellation
 * on a server thread.
 */
final class GenerationSession implements ClientResponseObserver<RunRequest, RunEvent>, GenerationCall {
    private final PreparedRequest request;
    private final CompletionListener listener;
    private final Runnable releaseSlot;
    private final RequestMetrics metrics;
    private final long startNanos = System.nanoTime();
    private final Choice[] choices;
    private ClientCallStreamObserver<RunRequest> call;
    private int choicesEnded;
    private int completionTokens;
    private double timeToFirstTokenMs;
    private FinishReason firstReason = FinishReason.FINISH_REASON_UNSPECIFIED;
    private boolean ended;

    /** One completion's text state. */
    private static final class Choice {
        final StreamingDecoder decoder;
        final StopSequenceMatcher stops;
        final StringBuilder text = new StringBuilder();
        /** Chars of {@link #text} already delivered. */
        int emitted;
        int tokens;
        long lastTokenNanos;
        boolean ended;

        Choice(TextTokenizer tokenizer, PreparedRequest request) {
            decoder = new StreamingDecoder(tokenizer);
            stops = new StopSequenceMatcher(request.stopSequences());
        }
    }

    GenerationSession(PreparedRequest request, TextTokenizer tokenizer, CompletionListener listener,
                      Runnable releaseSlot, RequestMetrics metrics) {
        this.request = request;
        this.listener = listener;
        this.releaseSlot = releaseSlot;
        this.metrics = metrics;
        this.choices = new Choice[request.n()];
        for (int i = 0; i < choices.length; i++) {
            choices[i] = new Choice(tokenizer, request);
        }
    }

    @Override
    public synchronized void beforeStart(ClientCallStreamObserver<RunRequest> requestStream) {
        this.call = requestStream;
    }

    @Override
    public synchronized void onNext(RunEvent event) {
        if (ended || event.getIndex() < 0 || event.getIndex() >= choices.length) {
            return;
        }
        int index = event.getIndex();
        Choice c = choices[index];
        if (c.ended) {
            return;
        }
        switch (event.getEventCase()) {
            case TOKEN_ID -> onToken(index, c, event);
            case FINISH_REASON -> {
                c.text.append(c.decoder.finish());
                FinishReason reason = switch (event.getFinishReason()) {
                    case "stop" -> FinishReason.FINISH_REASON_STOP;
                    case "length" -> FinishReason.FINISH_REASON_LENGTH;
                    default -> FinishReason.FINISH_REASON_UNSPECIFIED;
                };
                if (!deliverUpToStop(index, c, -1, null)) {
                    // The held-back tail (a stop-sequence prefix that never completed) goes out now.
                    deliver(index, c, -1, c.text.length(), null);
                    finishChoice(index, c, reason);
                }
            }
            default -> { }
        }
    }

    private void onToken(int index, Choice c, RunEvent event) {
        int tokenId = event.getTokenId();
        c.tokens++;
        completionTokens++;
        long now = System.nanoTime();
        if (completionTokens == 1) {
            timeToFirstTokenMs = (now - startNanos) / 1e6;
            metrics.firstToken(timeToFirstTokenMs);
        } else if (c.tokens > 1) {
            metrics.tokenGap((now - c.lastTokenNanos) / 1e6);
        }
        c.lastTokenNanos = now;
        try {
            c.text.append(c.decoder.append(tokenId));
        } catch (IllegalArgumentException e) {
            // An id the tokenizer cannot decode (a padding row of the vocabulary): no text.
        }
        TokenLogprobs logprobs = request.logprobs() ? logprobs(event) : null;
        if (!deliverUpToStop(index, c, tokenId, logprobs)) {
            deliver(index, c, tokenId, c.stops.safeLength(c.text), logprobs);
        }
    }

    private static TokenLogprobs logprobs(RunEvent event) {
        TokenLogprobs.Builder b = TokenLogprobs.newBuilder().setTokenId(event.getTokenId()).setLogprob(event.getLogprob());
        for (RunTopLogprob t : event.getTopLogprobsList()) {
            b.addTopLogprobs(TopLogprob.newBuilder().setTokenId(t.getTokenId()).setLogprob(t.getLogprob()));
        }
        return b.build();
    }

    /** If a stop sequence has appeared, delivers the text before it, ends the completion and returns true. */
    private boolean deliverUpToStop(int index, Choice c, int tokenId, TokenLogprobs logprobs) {
        int match = c.stops.firstMatch(c.text, c.emitted);
        if (match < 0) {
            return false;
        }
        c.text.setLength(match);
        deliver(index, c, tokenId, match, logprobs);
        finishChoice(index, c, FinishReason.FINISH_REASON_STOP_SEQUENCE);
        return true;
    }

    /** Sends the text up to {@code end} with {@code tokenId}; tokenId < 0 only flushes text that is left. */
    private void deliver(int index, Choice c, int tokenId, int end, TokenLogprobs logprobs) {
        String delta = end > c.emitted ? c.text.substring(c.emitted, end) : "";
        c.emitted = Math.max(c.emitted, end);
        if (tokenId >= 0) {
            listener.onToken(index, tokenId, delta, logprobs);
        } else if (!delta.isEmpty()) {
            listener.onTrailingText(index, delta);
        }
    }

    private void finishChoice(int index, Choice c, FinishReason reason) {
        c.ended = true;
        if (index == 0) {
            firstReason = reason;
        }
        listener.onChoiceFinished(index, reason, usage(c.tokens));
        if (++choicesEnded < choices.length) {
            return;
        }
        ended = true;
        releaseSlot.run();
        metrics.finished(firstReason, completionTokens);
        listener.onFinished(usage(completionTokens));
        if (reason == FinishReason.FINISH_REASON_STOP_SEQUENCE && call != null) {
            // The replica may still be generating (this stop sequence is the router's, not its own).
            call.cancel("stop sequence matched", null);
        }
    }

    private Usage usage(int tokens) {
        return Usage.newBuilder()
                .setPromptTokens(request.promptTokens())
                .setCompletionTokens(tokens)
                .setTimeToFirstTokenMs(timeToFirstTokenMs)
                .setTotalTimeMs((System.nanoTime() - startNanos) / 1e6)
                .build();
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
        GenerationError error = switch (s.getCode()) {
            // The replica judged the request itself (a limit the router did not check).
            case INVALID_ARGUMENT -> new GenerationError(GenerationError.Kind.INVALID_ARGUMENT, s.getDescription());
            case RESOURCE_EXHAUSTED -> new GenerationError(GenerationError.Kind.RESOURCE_EXHAUSTED, s.getDescription());
            default -> new GenerationError(GenerationError.Kind.UNAVAILABLE, "attention replica failed for request "
                    + request.requestId() + ": " + s.getCode() + (s.getDescription() == null ? "" : " " + s.getDescription()));
        };
        listener.onFailed(error);
    }

    @Override
    public synchronized void onCompleted() {
        if (!ended) {
            onError(Status.UNAVAILABLE.withDescription("stream ended without a finish reason").asRuntimeException());
        }
    }

    /** The router stops (or cannot compute): the request fails UNAVAILABLE saying {@code why}, its attention run is cancelled. */
    synchronized void abort(String why) {
        if (ended) {
            return;
        }
        ended = true;
        releaseSlot.run();
        metrics.failed(completionTokens);
        if (call != null) {
            call.cancel(why, null);
        }
        listener.onFailed(new GenerationError(GenerationError.Kind.UNAVAILABLE, why));
    }

    /** The client went away: stop the attention run and give the slot back. */
    @Override
    public synchronized void cancel() {
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
