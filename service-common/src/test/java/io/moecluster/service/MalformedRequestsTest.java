package io.moecluster.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * A request that does not parse is INVALID_ARGUMENT naming the reason, not UNKNOWN; a good one is
 * served as before. Tried on the gRPC health service (its request has one string field), which
 * every service of the cluster serves.
 */
class MalformedRequestsTest {
    /** The health Check method taking raw bytes, so the test can send anything. */
    private static final MethodDescriptor<byte[], byte[]> RAW_CHECK = HealthGrpc.getCheckMethod()
            .toBuilder(new Bytes(), new Bytes()).build();

    static final class Bytes implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** Field 1 (service, a string) holding "\u00c3(": not UTF-8. */
    static final byte[] INVALID_UTF8 = {0x0a, 0x02, (byte) 0xc3, 0x28};
    /** Field 1 claims 5 bytes, 1 follows. */
    static final byte[] TRUNCATED = {0x0a, 0x05, 0x41};

    private static Status call(Server server, byte[] request) throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
        try {
            ClientCalls.blockingUnaryCall(channel, RAW_CHECK, CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS),
                    request);
            return Status.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus();
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private static Server serve(UnaryOperator<io.grpc.ServerServiceDefinition> wrap) throws IOException {
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus("", HealthCheckResponse.ServingStatus.SERVING);
        return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(wrap.apply(health.getHealthService().bindService())).build().start();
    }

    @Test
    void unreadableRequestsAreInvalidArgumentAndGoodOnesAreServed() throws Exception {
        Server server = serve(MalformedRequests::guard);
        try {
            Status utf8 = call(server, INVALID_UTF8);
            assertThat(utf8.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(utf8.getDescription()).contains("grpc.health.v1.Health/Check").contains("UTF-8");
            Status truncated = call(server, TRUNCATED);
            assertThat(truncated.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(truncated.getDescription()).contains("truncated");
            assertThat(call(server, HealthCheckRequest.getDefaultInstance().toByteArray()).getCode())
                    .isEqualTo(Status.Code.OK);
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
            try {
                assertThat(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.getDefaultInstance()).getStatus())
                        .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
                assertThatThrownBy(() -> HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.newBuilder().setService("nope").build()))
                        .hasMessageContaining("NOT_FOUND");
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** What the issue saw, kept as the reason for the guard: unguarded, gRPC answers UNKNOWN. */
    @Test
    void unguardedTheSameRequestIsUnknown() throws Exception {
        Server server = serve(UnaryOperator.identity());
        try {
            assertThat(call(server, INVALID_UTF8).getCode()).isEqualTo(Status.Code.UNKNOWN);
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void theLogWritesOneLinePerIntervalAndCountsTheRest() {
        AtomicLong now = new AtomicLong(1_000);
        List<String> lines = new ArrayList<>();
        RateLimitedLog log = new RateLimitedLog(lines::add, Duration.ofSeconds(10), now::get);
        for (int i = 0; i < 1000; i++) {
            log.log("bad request " + i);
        }
        assertThat(lines).containsExactly("bad request 0");
        now.addAndGet(Duration.ofSeconds(10).toNanos());
        log.log("bad request 1000");
        assertThat(lines).hasSize(2);
        assertThat(lines.get(1)).isEqualTo("bad request 1000 (999 more like it not logged since the last line)");
        log.log("again");
        assertThat(lines).hasSize(2);
    }
}
