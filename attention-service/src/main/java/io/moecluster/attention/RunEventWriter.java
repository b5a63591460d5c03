package io.moecluster.attention;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.TokenLogprobs;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunTopLogprob;

/**
 * Turns one request's loop callbacks into its Run stream (on the loop thread; gRPC sends never
 * block): each token (with its completion's index and, when asked, log-probabilities), each
 * completion's finish reason, then the end of the stream.
 */
final class RunEventWriter implements GenerationListener {
    private final StreamObserver<RunEvent> out;
    private final long startNanos;
    private final boolean[] started;

    RunEventWriter(StreamObserver<RunEvent> out, long startNanos) {
        this(out, startNanos, 1);
    }

    RunEventWriter(StreamObserver<RunEvent> out, long startNanos, int n) {
        this.out = out;
        this.startNanos = startNanos;
        this.started = new boolean[n];
    }

    @Override
    public void onToken(int token) {
        onToken(0, token, null);
    }

    @Override
    public void onToken(int index, int token, TokenLogprobs logprobs) {
        RunEvent.Builder e = RunEvent.newBuilder().setTokenId(token).setIndex(index);
        if (!started[index]) {
            started[index] = true;
            e.setTimeToFirstTokenMs((System.nanoTime() - startNanos) / 1e6);
        }
        if (logprobs != null) {
            e.setLogprob(logprobs.logprob());
            for (int r = 0; r < logprobs.topCount(); r++) {
                e.addTopLogprobs(RunTopLogprob.newBuilder().setTokenId(logprobs.topId(r))
                        .setLogprob(logprobs.topLogprob(r)));
            }
        }
        out.onNext(e.build());
    }

    @Override
    public void onFinish(FinishReason reason) {
        onFinish(0, reason);
        onComplete();
    }

    @Override
    public void onFinish(int index, FinishReason reason) {
        out.onNext(RunEvent.newBuilder().setFinishReason(reason.apiName()).setIndex(index).build());
    }

    @Override
    public void onComplete() {
        out.onCompleted();
    }

    @Override
    public void onError(Throwable cause) {
        Status status = cause instanceof IllegalArgumentException
                ? Status.INVALID_ARGUMENT.withDescription(cause.getMessage())
                : Status.UNAVAILABLE.withDescription("generation failed: " + cause.getMessage()).withCause(cause);
        out.onError(status.asRuntimeException());
    }
}
