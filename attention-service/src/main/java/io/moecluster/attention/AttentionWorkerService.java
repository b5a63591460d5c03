package io.moecluster.attention;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.internal.v1.AttentionStatusRequest;
import io.moecluster.proto.internal.v1.AttentionWorkerGrpc;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import io.moecluster.proto.v1.ClusterStatus;
import io.opentelemetry.context.Context;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/** The internal AttentionWorker gRPC service over a {@link GenerationLoop}. */
public final class AttentionWorkerService extends AttentionWorkerGrpc.AttentionWorkerImplBase {
    private final GenerationLoop loop;
    private final RunRequestValidator validator;
    /** One element: the server learns its port only after the service is built. */
    private final String[] instanceId;
    private final boolean traced;
    private final Supplier<ClusterStatus> embeddedRouter;

    /** @param instanceId a one-element holder of this replica's id (its address), read on every Status */
    public AttentionWorkerService(GenerationLoop loop, String[] instanceId) {
        this(loop, instanceId, false, null);
    }

    /**
     * @param traced hand each request's trace context (current in the handler) to the loop
     * @param embeddedRouter in embedded-router mode, this replica's MoE router's view of the expert
     *     services, added to each Status (null otherwise, or while it returns null)
     */
    public AttentionWorkerService(GenerationLoop loop, String[] instanceId, boolean traced,
                                  Supplier<ClusterStatus> embeddedRouter) {
        this.traced = traced;
        this.embeddedRouter = embeddedRouter;
        this.loop = loop;
        this.validator = new RunRequestValidator(loop.config(), loop.maxSequenceLength(), loop.maxRunning());
        this.instanceId = instanceId;
    }

    @Override
    public void run(RunRequest request, StreamObserver<RunEvent> responses) {
        long start = System.nanoTime();
        int[] prompt;
        SamplingParams params;
        int n;
        try {
            prompt = validator.prompt(request);
            params = validator.sampling(request);
            n = validator.n(request);
        } catch (InvalidFieldException e) {
            responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        ServerCallStreamObserver<RunEvent> call = (ServerCallStreamObserver<RunEvent>) responses;
        // The handler must be set before this method returns, but the handle exists only after
        // submit; a cancel that lands in between is caught by the isCancelled() check below.
        AtomicReference<GenerationHandle> handle = new AtomicReference<>();
        call.setOnCancelHandler(() -> {
            GenerationHandle h = handle.get();
            if (h != null) {
                h.cancel();
            }
        });
        try {
            handle.set(loop.submit(prompt, params, n, new RunEventWriter(call, start, n),
                    traced ? Context.current() : null));
        } catch (CapacityExceededException e) {
            call.onError(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()).asRuntimeException());
            return;
        } catch (IllegalStateException e) {
            call.onError(Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        if (call.isCancelled()) {
            handle.get().cancel();
        }
    }

    @Override
    public void status(AttentionStatusRequest request, StreamObserver<AttentionStatus> responses) {
        AttentionStatus.Builder status = AttentionStatus.newBuilder()
                .setInstanceId(instanceId[0])
                .setRunningSequences(loop.runningCount())
                .setQueuedSequences(loop.queuedCount())
                .setMaxRunningSequences(loop.maxRunning());
        ClusterStatus experts = embeddedRouter == null ? null : embeddedRouter.get();
        if (experts != null) {
            status.setEmbeddedRouter(experts);
        }
        responses.onNext(status.build());
        responses.onCompleted();
    }
}
