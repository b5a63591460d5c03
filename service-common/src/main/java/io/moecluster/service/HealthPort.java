package io.moecluster.service;

import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * A plaintext port that serves only {@code grpc.health.v1.Health} of a service
 * ({@code --health-port}), for probes that cannot speak TLS, such as Kubernetes' built-in gRPC
 * probes, while the service's own ports require TLS. It answers what the service's health
 * manager says and nothing else.
 */
public final class HealthPort implements AutoCloseable {
    private final Server server;

    private HealthPort(Server server) {
        this.server = server;
    }

    /** Listens on {@code bind:port} (0 = a free port); fails naming the flag. */
    public static HealthPort start(String bind, int port, HealthStatusManager health) {
        try {
            return new HealthPort(NettyServerBuilder.forAddress(new InetSocketAddress(bind, port),
                    InsecureServerCredentials.create()).addService(health.getHealthService()).build().start());
        } catch (IOException e) {
            throw new UncheckedIOException("--health-port: cannot listen on " + bind + ":" + port + ": " + e.getMessage(), e);
        }
    }

    public int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.shutdownNow();
        try {
            server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
