package io.moecluster.attention;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.proto.internal.v1.RunEvent;

/** Turns one request's loop callbacks into its Run stream (on the loop thread; gRPC sends never block). */
final class RunEventWriter implements GenerationListener {
    private final StreamObserver<RunEvent> out;
    private final long startNanos;
    private boolean first = true;

    RunEventWriter(StreamObserver<RunEvent> out, long startNanos) {
        this.out = out;
        this.startNanos = startNanos;
    }

    @Override
    public void onToken(int token) {
        RunEvent.Builder e = RunEvent.newBuilder().setTokenId(token);
        if (first) {
            first = false;
            e.setTimeToFirstTokenMs((System.nanoTime() - startNanos) / 1e6);
        }
        out.onNext(e.build());
    }

    @Override
    public void onFinish(FinishReason reason) {
        out.onNext(RunEvent.newBuilder().setFinishReason(reason.apiName()).build());
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
