package io.moecluster.router;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.internal.v1.AttentionStatusRequest;
import io.moecluster.proto.internal.v1.AttentionWorkerGrpc;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import java.util.concurrent.TimeUnit;

/** An {@link AttentionClient} over one gRPC channel (cluster-internal traffic; TLS in a secured cluster). */
public final class GrpcAttentionClient implements AttentionClient {
    private final String address;
    private final ManagedChannel channel;
    private final AttentionWorkerGrpc.AttentionWorkerStub async;
    private final AttentionWorkerGrpc.AttentionWorkerBlockingStub blocking;

    /** Connects (lazily) to {@code host:port}. */
    public static GrpcAttentionClient connect(String address) {
        return new GrpcAttentionClient(address, NettyChannelBuilder.forTarget(address).usePlaintext().build());
    }

    /** As {@link #connect(String)}, every call through {@code interceptor} (trace propagation). */
    public static GrpcAttentionClient connect(String address, ClientInterceptor interceptor) {
        return connect(address, interceptor, InsecureChannelCredentials.create());
    }

    /** As above, over {@code credentials} (TLS with the router's certificate, in a secured cluster). */
    public static GrpcAttentionClient connect(String address, ClientInterceptor interceptor,
                                              ChannelCredentials credentials) {
        return new GrpcAttentionClient(address, NettyChannelBuilder.forTarget(address, credentials)
                .intercept(interceptor).build());
    }

    /** Takes ownership of {@code channel}: {@link #close()} shuts it down. */
    public GrpcAttentionClient(String address, ManagedChannel channel) {
        this.address = address;
        this.channel = channel;
        this.async = AttentionWorkerGrpc.newStub(channel);
        this.blocking = AttentionWorkerGrpc.newBlockingStub(channel);
    }

    @Override
    public String address() {
        return address;
    }

    @Override
    public void run(RunRequest request, StreamObserver<RunEvent> events) {
        async.run(request, events);
    }

    @Override
    public AttentionStatus status(long timeoutMillis) {
        return blocking.withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS)
                .status(AttentionStatusRequest.getDefaultInstance());
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
