package io.moecluster.router;

import io.aeron.Aeron;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.io.Closer;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.AeronExpertDispatcher;
import io.moecluster.dispatch.DispatchStatus;
import io.moecluster.dispatch.MoeRoutingContext;
import io.moecluster.dispatch.RouterMetrics;
import io.moecluster.dispatch.TokenRates;
import io.moecluster.dispatch.TracedExpertDispatcher;
import io.moecluster.service.AeronLoss;
import io.moecluster.service.DataPlaneMetrics;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.AeronClients;
import io.moecluster.transport.AgentRunners;
import io.moecluster.transport.IdleStrategies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The router-service of a cluster, as the cluster file describes it: the public gRPC API in front
 * of the attention replicas and, unless the attention replicas embed the router, the MoE data
 * plane ({@link MoeService}) that gates each layer and dispatches to the expert services. Built
 * from a {@link Context}:
 *
 * <pre>{@code
 * RouterNode node = RouterNode.launch(new RouterNode.Context().cluster(spec).model(dir).threads(1));
 * }</pre>
 */
public final class RouterNode implements AutoCloseable {
    /** Default of {@code --max-active-requests}. */
    public static final int DEFAULT_MAX_ACTIVE_REQUESTS = 64;

    /**
     * How to start the router-service: the settings every service has, those of a service that
     * routes MoE layers ({@link MoeRoutingContext}), and its own. Setters mirror
     * {@code moe serve router}'s flags; {@link #conclude()} fills the defaults and checks every
     * value, naming the flag.
     */
    public static final class Context extends MoeRoutingContext<Context> {
        private int maxActiveRequests = DEFAULT_MAX_ACTIVE_REQUESTS;
        private int maxSeqLen;
        private int maxBatchTokens = EngineOptions.DEFAULT_MAX_BATCH_TOKENS;
        private int threads;
        private String backend = ComputeBackends.DEFAULT;
        private Duration expertTimeout = AeronExpertDispatcher.DEFAULT_REPLY_TIMEOUT;
        private int httpPort;
        private Path chatTemplate;
        private String servedModelName;

        /** The OpenAI-compatible HTTP API's port ({@code --http-port}); 0, the default, turns it off. */
        public Context httpPort(int httpPort) {
            this.httpPort = httpPort;
            return this;
        }

        /** A Jinja chat template file that replaces the model's ({@code --chat-template}); null = the model's. */
        public Context chatTemplate(Path chatTemplate) {
            this.chatTemplate = chatTemplate;
            return this;
        }

        /** The model's name in the HTTP API ({@code --served-model-name}); null = the model directory's name. */
        public Context servedModelName(String servedModelName) {
            this.servedModelName = servedModelName;
            return this;
        }

        /** Requests admitted at once ({@code --max-active-requests}); default {@value #DEFAULT_MAX_ACTIVE_REQUESTS}. */
        public Context maxActiveRequests(int maxActiveRequests) {
            this.maxActiveRequests = maxActiveRequests;
            return this;
        }

        /** Prompt plus completion limit ({@code --max-seq-len}); 0, the default, as the attention services'. */
        public Context maxSeqLen(int maxSeqLen) {
            this.maxSeqLen = maxSeqLen;
            return this;
        }

        /** The attention services' max-batch-tokens ({@code --max-batch-tokens}): the largest MoE request. */
        public Context maxBatchTokens(int maxBatchTokens) {
            this.maxBatchTokens = maxBatchTokens;
            return this;
        }

        /** Threads for the gate matmuls ({@code --threads}); 0 = one per core, the default. */
        public Context threads(int threads) {
            this.threads = threads;
            return this;
        }

        /** Where the gates compute ({@code --device}); default {@value ComputeBackends#DEFAULT}. */
        public Context device(String device) {
            this.backend = device;
            return this;
        }

        /** How long an expert service may take to answer a layer's batches ({@code --expert-timeout-ms}); default 10 s. */
        public Context expertTimeout(Duration expertTimeout) {
            this.expertTimeout = expertTimeout;
            return this;
        }

        @Override
        protected Duration layerTimeout() {
            return expertTimeout;
        }

        @Override
        protected void concludeRouting() {
            requireAtLeast("--max-active-requests", maxActiveRequests, 1);
            requireAtLeast("--max-seq-len", maxSeqLen, 0);
            requireAtLeast("--max-batch-tokens", maxBatchTokens, 1);
            requireAtLeast("--threads", threads, 0);
            requirePositiveMillis("--expert-timeout-ms", expertTimeout);
            requireAtLeast("--http-port", httpPort, 0);
            if (httpPort > 65535) {
                throw new IllegalArgumentException("--http-port must be a port number (0 = off), got " + httpPort);
            }
            if (chatTemplate != null && !Files.isRegularFile(chatTemplate)) {
                throw new IllegalArgumentException("--chat-template: " + chatTemplate + " is not a file");
            }
            ComputeBackends.requireAvailable(backend);
        }
    }

    private final Closer resources;
    private final RouterServer server;
    private final MoeService moe;
    private final ServiceMetrics metrics;
    private final AeronLoss aeronLoss;

    private RouterNode(Closer resources, RouterServer server, MoeService moe, ServiceMetrics metrics, AeronLoss aeronLoss) {
        this.resources = resources;
        this.server = server;
        this.moe = moe;
        this.metrics = metrics;
        this.aeronLoss = aeronLoss;
    }

    /** False once its Aeron client is gone ({@link AeronLoss}; standalone MoE router only). */
    public boolean serving() {
        return !aeronLoss.lost();
    }

    /** Starts the API (and the MoE data plane); on failure closes what it opened and rethrows. */
    public static RouterNode launch(Context ctx) {
        ctx.conclude();
        ClusterSpec spec = ctx.cluster();
        ModelConfig config = ModelConfig.load(ctx.model());
        List<String> attention = new ArrayList<>();
        for (ClusterSpec.Attention a : spec.attention()) {
            attention.add(a.host() + ":" + a.grpcPort());
        }
        Closer resources = new Closer();
        try {
            ServiceMetrics metrics = resources.add(ServiceMetrics.start("moe-router", spec.router().id(),
                    spec.router().host(), ctx.metricsPort()));
            ServiceTracing tracing = resources.add(ctx.tracing().start("moe-router", spec.router().id()));
            DataPlaneMetrics.register(metrics.meter(), ctx.dataPlaneAuth());
            ServiceSecurity security = resources.add(ctx.security());
            security.logSummary("router-service");
            MoeService moe = null;
            ClusterStatusContributor experts;
            AeronLoss loss = new AeronLoss("router-service " + spec.router().id(), ctx.onAeronLost());
            if (spec.embeddedRouter()) {
                experts = new EmbeddedRouterStatus(spec);
            } else {
                Aeron aeron = resources.add(AeronClients.connect(spec.aeronDir(), loss));
                AeronExpertDispatcher dispatcher = new AeronExpertDispatcher(ctx.dispatcher(aeron, config,
                        spec.channelOf(spec.router()), spec.router().replyStreamId(), ClusterSpec.ROUTER_SENDER));
                moe = startMoeService(ctx, config, aeron, dispatcher, tracing, resources);
                RouterMetrics.register(metrics.meter(), moe.moe(), dispatcher, moe::malformedDropped);
                moe.registerMetrics(metrics.meter());
                TokenRates rates = resources.add(new TokenRates(moe.moe(), dispatcher.placement(), Duration.ofSeconds(5)));
                DispatchStatus dispatch = new DispatchStatus(moe.moe(), dispatcher, rates);
                experts = (status, attentionReplicas) -> dispatch.writeTo(status);
            }
            RouterServer server = resources.add(RouterServer.start(new RouterServer.Config(ctx.model(),
                    spec.router().host(), spec.router().grpcPort(), attention, ctx.maxActiveRequests, ctx.maxSeqLen,
                    List.of(experts), metrics.meter()).withHttp(ctx.httpPort, ctx.chatTemplate, ctx.servedModelName,
                    metrics.endpoint()), tracing, security));
            if (ctx.healthPort() > 0) {
                server.servePlainHealth(ctx.healthPort());
            }
            loss.onLost(() -> server.notServing("router-service " + spec.router().id()
                    + " lost its data plane (its Aeron client is gone) and is restarting"));
            return new RouterNode(resources, server, moe, metrics, loss);
        } catch (RuntimeException e) {
            throw resources.closeAfter(e);
        }
    }

    /**
     * The MoE block over the dispatcher (which it owns), served to the attention replicas by an
     * agent on its own thread.
     */
    private static MoeService startMoeService(Context ctx, ModelConfig config, Aeron aeron,
                                              AeronExpertDispatcher dispatcher, ServiceTracing tracing,
                                              Closer resources) {
        ClusterSpec spec = ctx.cluster();
        MoeBlock block;
        try {
            Checkpoint checkpoint = resources.add(Checkpoint.open(ctx.model()));
            WeightLoader loader = resources.add(new WeightLoader(checkpoint, config));
            WorkerPool pool = resources.add(new WorkerPool(EngineOptions.resolveThreads(ctx.threads), "router"));
            ComputeBackend backend = resources.add(ComputeBackends.open(ctx.backend, pool));
            block = resources.add(new MoeBlock(config, loader, TracedExpertDispatcher.wrap(dispatcher, tracing,
                    config.hiddenSize(), config.expertSlots()), backend, ctx.maxBatchTokens));
        } catch (RuntimeException e) {
            dispatcher.close();
            throw e;
        }
        MoeService moe = resources.add(new MoeService(new MoeService.Context()
                .aeron(aeron)
                .requests(spec.channelOf(spec.router()), spec.router().moeStreamId())
                .moe(config, block)
                .senderId(ClusterSpec.ROUTER_SENDER)
                .maxTokens(ctx.maxBatchTokens)
                .replyChannels(spec::replyChannel)
                .tracing(tracing)
                .publicationDeadline(ctx.publicationDeadline())
                .dataPlaneAuth(ctx.dataPlaneAuth())));
        resources.add(AgentRunners.start(moe.agent(), IdleStrategies.parse(ctx.idleStrategy())));
        return moe;
    }

    public RouterServer server() {
        return server;
    }

    public String address() {
        return server.address();
    }

    /** The MoE data plane, or null in embedded-router mode. */
    public MoeService moe() {
        return moe;
    }

    /** The OpenAI-compatible API's base URL ({@code http://host:port/v1}), or null when it is off. */
    public String httpUrl() {
        return server.httpUrl();
    }

    /** The Prometheus scrape URL, or null without metrics. */
    public String metricsEndpoint() {
        return metrics.endpoint();
    }

    /** Stops the API first, then the MoE data plane, then frees the model and the Aeron client. */
    @Override
    public void close() {
        aeronLoss.closing();
        resources.close();
    }
}
