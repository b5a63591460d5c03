package io.moecluster.router;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.model.GenerationDefaults;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.router.chat.ChatTemplate;
import io.moecluster.router.openai.OpenAiServer;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.service.GrpcServers;
import io.moecluster.service.MalformedRequests;
import io.moecluster.service.HealthPort;
import io.moecluster.service.security.AccessPolicy;
import io.moecluster.service.security.Role;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.telemetry.ServiceTracing;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.MeterProvider;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A running router: the public Inference and Admin services (plus health and reflection) on a Netty
 * gRPC server, and, with an HTTP port, the OpenAI-compatible API ({@link OpenAiServer}), both over
 * one {@link GenerationService} in front of a pool of attention replicas. {@code moe serve router}
 * runs one in a cluster ({@link RouterNode}).
 */
public final class RouterServer implements AutoCloseable {
    /**
     * @param attention attention replicas, host:port each
     * @param maxSeqLen prompt plus completion limit; 0 = min(max_position_embeddings, 4096), as the
     *     attention service's default
     * @param contributors extra parts of GetClusterStatus (the MoE router's expert services)
     */
    public record Config(Path model, String bind, int port, List<String> attention, int maxActiveRequests,
                         int maxSeqLen, List<ClusterStatusContributor> contributors,
                         Meter meter, int httpPort, Path chatTemplate, String servedModelName,
                         String metricsEndpoint) {
        /** Without metrics. */
        public Config(Path model, String bind, int port, List<String> attention, int maxActiveRequests,
                      int maxSeqLen, List<ClusterStatusContributor> contributors) {
            this(model, bind, port, attention, maxActiveRequests, maxSeqLen, contributors,
                    MeterProvider.noop().get("noop"));
        }

        /** Without the HTTP API. */
        public Config(Path model, String bind, int port, List<String> attention, int maxActiveRequests,
                      int maxSeqLen, List<ClusterStatusContributor> contributors, Meter meter) {
            this(model, bind, port, attention, maxActiveRequests, maxSeqLen, contributors, meter, 0, null, null, null);
        }

        /**
         * @param httpPort the OpenAI-compatible HTTP API's port; 0 = off
         * @param chatTemplate a Jinja file that replaces the model's chat template, or null
         * @param servedModelName the model's name in the HTTP API; null = the model directory's name
         * @param metricsEndpoint the router's Prometheus URL, which GET /metrics serves; or null
         */
        public Config {
            attention = List.copyOf(attention);
            contributors = List.copyOf(contributors);
        }

        /** The same with the HTTP API on {@code port} (0 = off). */
        public Config withHttp(int port, Path template, String name, String metrics) {
            return new Config(model, bind, this.port, attention, maxActiveRequests, maxSeqLen, contributors, meter, port,
                    template, name, metrics);
        }

        /** The name the HTTP API serves the model under. */
        public String modelName() {
            if (servedModelName != null && !servedModelName.isEmpty()) {
                return servedModelName;
            }
            Path name = model.toAbsolutePath().normalize().getFileName();
            return name == null ? "model" : name.toString();
        }
    }

    private final Server server;
    private final HealthStatusManager health;
    private final AttentionPool pool;
    private final GenerationService generation;
    private final TextTokenizer tokenizer;
    private final String host;
    private final AtomicBoolean closed = new AtomicBoolean();

    private final ServiceTracing tracing;
    private volatile OpenAiServer http;
    private volatile HealthPort plainHealth;

    private RouterServer(Server server, HealthStatusManager health, AttentionPool pool, GenerationService generation,
                         TextTokenizer tokenizer, String host, ServiceTracing tracing) {
        this.tracing = tracing;
        this.server = server;
        this.health = health;
        this.pool = pool;
        this.generation = generation;
        this.tokenizer = tokenizer;
        this.host = host;
    }

    public static RouterServer start(Config config) {
        return start(config, ServiceTracing.off());
    }

    /**
     * As {@link #start(Config)}, traced: a server span per Inference call (its parent from the
     * client's W3C metadata, if any), and the context passed on to the attention replicas. The
     * server owns {@code tracing} and closes it last.
     */
    public static RouterServer start(Config config, ServiceTracing tracing) {
        return start(config, tracing, ServiceSecurity.none());
    }

    /**
     * As {@link #start(Config, ServiceTracing)}, secured: TLS on both APIs when {@code security}
     * has it (client certificates optional, checked against the cluster CA), callers checked by
     * its {@link AccessPolicy} (Inference: user, Admin: operator), and the calls to the attention
     * replicas made with this service's certificate. The caller owns {@code security}.
     */
    public static RouterServer start(Config config, ServiceTracing tracing, ServiceSecurity security) {
        try {
            return startTraced(config, tracing, security);
        } catch (RuntimeException e) {
            tracing.close();
            throw e;
        }
    }

    private static RouterServer startTraced(Config config, ServiceTracing tracing, ServiceSecurity security) {
        if (config.attention().isEmpty()) {
            throw new IllegalArgumentException("--attention: at least one attention replica (host:port) is needed");
        }
        ModelConfig model = ModelConfig.load(config.model());
        int maxSeqLen = config.maxSeqLen() > 0 ? config.maxSeqLen()
                : Math.min(model.maxPositionEmbeddings(), EngineOptions.DEFAULT_MAX_SEQ_LEN_CAP);
        TextTokenizer tokenizer = TextTokenizer.load(config.model(), model.bosTokenId());
        List<AttentionClient> clients = new ArrayList<>();
        for (String address : config.attention()) {
            clients.add(GrpcAttentionClient.connect(address, tracing.clientInterceptor(), security.channelCredentials()));
        }
        AttentionPool pool = new AttentionPool(clients);
        AdmissionControl admission = new AdmissionControl(config.maxActiveRequests());
        GenerationService generation = new GenerationService(model, tokenizer, pool, admission,
                new RequestValidator(model, maxSeqLen, GenerationDefaults.load(config.model())),
                new RequestMetrics(config.meter(), admission));
        HealthStatusManager health = new HealthStatusManager();
        try {
            Server server = NettyServerBuilder.forAddress(new InetSocketAddress(config.bind(), config.port()),
                            security.serverCredentials(false))
                    .intercept(new AccessPolicy(security, Map.of(InferenceGrpc.SERVICE_NAME, Role.USER,
                            AdminGrpc.SERVICE_NAME, Role.OPERATOR)))
                    .addService(MalformedRequests.guard(ServerInterceptors.intercept(new InferenceService(generation),
                            tracing.serverInterceptor())))
                    .addService(MalformedRequests.guard(new AdminService(pool, admission, config.contributors())))
                    .addService(MalformedRequests.guard(health.getHealthService()))
                    .addService(MalformedRequests.guard(ProtoReflectionServiceV1.newInstance()))
                    .build()
                    .start();
            RouterServer router = new RouterServer(server, health, pool, generation, tokenizer, config.bind(), tracing);
            if (config.httpPort() > 0) {
                try {
                    router.http = OpenAiServer.start(new OpenAiServer.Config(config.bind(), config.httpPort(),
                                    config.modelName(), config.metricsEndpoint()), generation,
                            ChatTemplate.load(config.model(), config.chatTemplate()), tracing, router::serving, security);
                } catch (RuntimeException e) {
                    router.close();
                    throw e;
                }
            }
            health.setStatus("", ServingStatus.SERVING);
            return router;
        } catch (IOException e) {
            pool.close();
            tokenizer.close();
            throw new UncheckedIOException("cannot listen on " + config.bind() + ":" + config.port(), e);
        }
    }

    /**
     * Serves this router's gRPC health, alone, on a plaintext port (for probes that speak no TLS);
     * it stops with the router.
     *
     * @return the port
     */
    public int servePlainHealth(int port) {
        HealthPort p = HealthPort.start(host, port, health);
        plainHealth = p;
        return p.port();
    }

    private boolean serving() {
        return !closed.get() && !notServing;
    }

    private volatile boolean notServing;

    /**
     * It cannot compute any more (the standalone MoE router lost its Aeron client): health
     * NOT_SERVING, and every request, running or new, fails UNAVAILABLE saying {@code why}.
     */
    public void notServing(String why) {
        notServing = true;
        if (!closed.get()) {
            health.setStatus("", ServingStatus.NOT_SERVING);
        }
        generation.stop(why);
    }

    /** The OpenAI-compatible API's base URL ({@code http://host:port/v1}), or null when it is off. */
    public String httpUrl() {
        OpenAiServer h = http;
        return h == null ? null : h.url();
    }

    /** The HTTP API's port, or 0 when it is off. */
    public int httpPort() {
        OpenAiServer h = http;
        return h == null ? 0 : h.port();
    }

    public int port() {
        return server.getPort();
    }

    public String address() {
        return host + ":" + port();
    }

    /** Stops taking calls, waits briefly for those in flight, then closes the channels; idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        // Calls in flight get the grace period; those still running then fail UNAVAILABLE (both
        // APIs), not cut off, and only then is the HTTP server closed.
        GrpcServers.stop(server, health, () -> { }, () -> generation.stop("router-service is stopping"));
        if (http != null) {
            http.close();
        }
        if (plainHealth != null) {
            plainHealth.close();
        }
        pool.close();
        tokenizer.close();
        tracing.close();
    }
}
