package io.moecluster.expert;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.moecluster.service.MalformedRequests;
import io.moecluster.service.security.ServiceSecurity;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * The gRPC health service of an expert service (which serves its data over Aeron, not gRPC), so
 * Kubernetes probes and {@code grpc-health-probe} see it like any other service: SERVING while it
 * serves, NOT_SERVING once it starts draining or its Aeron client is gone.
 */
final class HealthEndpoint implements AutoCloseable {
    private final Server server;
    private final HealthStatusManager health;

    private HealthEndpoint(Server server, HealthStatusManager health) {
        this.server = server;
        this.health = health;
    }

    static HealthEndpoint start(String bind, int port) {
        return start(bind, port, ServiceSecurity.none());
    }

    /** With TLS when {@code security} has it (client certificates optional: health is open to probes that can do TLS). */
    static HealthEndpoint start(String bind, int port, ServiceSecurity security) {
        HealthStatusManager health = new HealthStatusManager();
        try {
            Server server = NettyServerBuilder.forAddress(new InetSocketAddress(bind, port),
                            security.serverCredentials(false))
                    .addService(MalformedRequests.guard(health.getHealthService())).build().start();
            health.setStatus("", ServingStatus.SERVING);
            return new HealthEndpoint(server, health);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serve gRPC health on " + bind + ":" + port + ": " + e.getMessage(), e);
        }
    }

    int port() {
        return server.getPort();
    }

    HealthStatusManager health() {
        return health;
    }

    void draining() {
        notServing();
    }

    /** NOT_SERVING from now on (draining, or its Aeron client is gone). */
    void notServing() {
        health.setStatus("", ServingStatus.NOT_SERVING);
    }

    @Override
    public void close() {
        health.enterTerminalState();
        server.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
