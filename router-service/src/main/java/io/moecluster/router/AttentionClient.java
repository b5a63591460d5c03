package io.moecluster.router;

import io.grpc.stub.StreamObserver;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;

/** One attention replica, as the router sees it. */
public interface AttentionClient extends AutoCloseable {
    /** host:port, also the replica's instance id in cluster status. */
    String address();

    /**
     * Starts one sequence; events arrive on {@code events}. Pass an
     * {@link io.grpc.stub.ClientResponseObserver} to get the call's
     * {@link io.grpc.stub.ClientCallStreamObserver} (and so a way to cancel it) before it starts.
     */
    void run(RunRequest request, StreamObserver<RunEvent> events);

    /**
     * The replica's load, within {@code timeoutMillis}.
     *
     * @throws io.grpc.StatusRuntimeException if it cannot be reached in time
     */
    AttentionStatus status(long timeoutMillis);

    @Override
    void close();
}
