package io.moecluster.attention;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.moecluster.core.attention.FeedForwardFactory;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.moe.LocalFeedForward;
import io.moecluster.proto.internal.v1.AttentionWorkerGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.service.GrpcServers;
import io.moecluster.service.MalformedRequests;
import io.moecluster.service.HealthPort;
import io.moecluster.service.security.AccessPolicy;
import io.moecluster.service.security.Role;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.telemetry.ServiceTracing;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * A running attention replica: an {@link Engine}, its {@link GenerationLoop} and a Netty gRPC server
 * with AttentionWorker, health and reflection. {@code moe serve attention} runs one in a cluster ({@link AttentionNode}).
 */
public final class AttentionServer implements AutoCloseable {
    /**
     * @param bind address to listen on
     * @param port 0 picks a free port
     * @param maxRunning most sequences holding a KV cache at once
     * @param maxQueued most further requests waiting; past that, RESOURCE_EXHAUSTED
     * @param microBatches 1, or 2 to split steps of two or more sequences in two micro-batches that
     *     alternate between attention and the MoE layers ({@link io.moecluster.core.attention.Transformer#microBatches(int)})
     */
    public record Config(Path model, String bind, int port, EngineOptions engine, int maxRunning, int maxQueued,
                         FeedForwardFactory feedForward, int microBatches, Supplier<ClusterStatus> embeddedRouter) {
        /** No embedded router to report. */
        public Config(Path model, String bind, int port, EngineOptions engine, int maxRunning, int maxQueued,
                      FeedForwardFactory feedForward, int microBatches) {
            this(model, bind, port, engine, maxRunning, maxQueued, feedForward, microBatches, null);
        }

        /** One micro-batch per step. */
        public Config(Path model, String bind, int port, EngineOptions engine, int maxRunning, int maxQueued,
                      FeedForwardFactory feedForward) {
            this(model, bind, port, engine, maxRunning, maxQueued, feedForward, 1);
        }

        /** Experts in process (single-node mode). */
        public Config(Path model, String bind, int port, EngineOptions engine, int maxRunning, int maxQueued) {
            this(model, bind, port, engine, maxRunning, maxQueued, LocalFeedForward::new);
        }

        /**
         * As this, with the in-process MoE router's view of the expert services for Status (read on
         * each call; null while there is none yet).
         */
        public Config withEmbeddedRouter(Supplier<ClusterStatus> status) {
            return new Config(model, bind, port, engine, maxRunning, maxQueued, feedForward, microBatches, status);
        }

    }

    private final Engine engine;
    private final GenerationLoop loop;
    private final Server server;
    private final HealthStatusManager health;
    private final String host;
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile HealthPort plainHealth;

    private final ServiceTracing tracing;

    private AttentionServer(Engine engine, GenerationLoop loop, Server server, HealthStatusManager health, String host,
                            ServiceTracing tracing) {
        this.tracing = tracing;
        this.engine = engine;
        this.loop = loop;
        this.server = server;
        this.health = health;
        this.host = host;
    }

    /** Loads the model and starts serving; fails (freeing what it opened) if either fails. */
    public static AttentionServer start(Config config) {
        return start(config, ServiceTracing.off());
    }

    /**
     * As {@link #start(Config)}, traced: a server span per Run call (its parent from the caller's
     * metadata) and a span per scheduling step. The server owns {@code tracing} and closes it last.
     */
    public static AttentionServer start(Config config, ServiceTracing tracing) {
        return start(config, tracing, ServiceSecurity.none());
    }

    /**
     * As {@link #start(Config, ServiceTracing)}, secured: with TLS, mutual TLS (a client must
     * present a certificate of the cluster CA) and the AttentionWorker API for operators only
     * (the router's certificate is one); health stays open. The caller owns {@code security}.
     */
    public static AttentionServer start(Config config, ServiceTracing tracing, ServiceSecurity security) {
        Engine engine;
        try {
            engine = Engine.open(config.model(), config.engine(), config.feedForward());
            engine.transformer().microBatches(config.microBatches());
        } catch (RuntimeException e) {
            tracing.close();
            throw e;
        }
        GenerationLoop loop = null;
        try {
            loop = new GenerationLoop(engine, config.maxRunning(), config.maxQueued(), tracing);
            HealthStatusManager health = new HealthStatusManager();
            // The instance id is only known once the port is; Status reads it from a holder.
            String[] instanceId = {config.bind() + ":" + config.port()};
            Server server = NettyServerBuilder.forAddress(new InetSocketAddress(config.bind(), config.port()),
                            security.serverCredentials(true))
                    .intercept(new AccessPolicy(security, Map.of(AttentionWorkerGrpc.SERVICE_NAME, Role.OPERATOR)))
                    .addService(MalformedRequests.guard(ServerInterceptors.intercept(
                            new AttentionWorkerService(loop, instanceId, tracing.enabled(), config.embeddedRouter()),
                            tracing.serverInterceptor())))
                    .addService(MalformedRequests.guard(health.getHealthService()))
                    .addService(MalformedRequests.guard(ProtoReflectionServiceV1.newInstance()))
                    .build()
                    .start();
            instanceId[0] = config.bind() + ":" + server.getPort();
            health.setStatus("", ServingStatus.SERVING);
            return new AttentionServer(engine, loop, server, health, config.bind(), tracing);
        } catch (IOException e) {
            closeQuietly(loop, engine);
            tracing.close();
            throw new UncheckedIOException("cannot listen on " + config.bind() + ":" + config.port(), e);
        } catch (RuntimeException e) {
            closeQuietly(loop, engine);
            tracing.close();
            throw e;
        }
    }

    private static void closeQuietly(GenerationLoop loop, Engine engine) {
        if (loop != null) {
            loop.close();
        }
        engine.close();
    }

    public int port() {
        return server.getPort();
    }

    public String address() {
        return host + ":" + port();
    }

    /** The engine the loop steps (its configuration and counters; only the loop's thread runs it). */
    public Engine engine() {
        return engine;
    }

    public GenerationLoop loop() {
        return loop;
    }

    /**
     * Health NOT_SERVING from now on: the replica cannot compute (its Aeron client is gone). Calls
     * still come in until the process stops; their MoE layers fail, as UNAVAILABLE.
     */
    public void notServing() {
        if (!closed.get()) {
            health.setStatus("", ServingStatus.NOT_SERVING);
        }
    }

    /**
     * Serves this service's gRPC health, alone, on a plaintext port (for probes that speak no TLS);
     * it stops with the service.
     *
     * @return the port
     */
    public int servePlainHealth(int port) {
        HealthPort p = HealthPort.start(host, port, health);
        plainHealth = p;
        return p.port();
    }

    /** Stops taking calls, fails the ones in flight (the loop closes), then frees the model; idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        GrpcServers.stop(server, health, loop::close);
        if (plainHealth != null) {
            plainHealth.close();
        }
        engine.close();
        tracing.close();
    }
}
