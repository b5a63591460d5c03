package io.moecluster.attention;

import io.aeron.Aeron;
import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.attention.FeedForwardFactory;
import io.moecluster.core.attention.FeedForwardLayers;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.io.Closer;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.AeronExpertDispatcher;
import io.moecluster.dispatch.DispatchStatus;
import io.moecluster.dispatch.MoeRoutingContext;
import io.moecluster.dispatch.RouterMetrics;
import io.moecluster.dispatch.TokenRates;
import io.moecluster.dispatch.TracedExpertDispatcher;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.service.AeronLoss;
import io.moecluster.service.DataPlaneMetrics;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.AeronClients;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One attention replica of a cluster, as the cluster file describes it: the attention server
 * whose engine hands each MoE layer either to the router-service over Aeron ({@link RemoteMoe}) or,
 * in embedded-router mode, to an in-process {@link MoeBlock} that dispatches to the expert
 * services itself. Dense MLP layers run here in both modes. Built from a {@link Context}:
 *
 * <pre>{@code
 * AttentionNode node = AttentionNode.launch(new AttentionNode.Context()
 *         .cluster(spec).id("attention-0").model(dir).engine(new EngineOptions(2, 256, 0)));
 * }</pre>
 */
public final class AttentionNode implements AutoCloseable {
    /** Default of {@code --max-running}. */
    public static final int DEFAULT_MAX_RUNNING = 16;
    /** Default of {@code --max-queued}. */
    public static final int DEFAULT_MAX_QUEUED = 256;
    /** Default of {@code --moe-timeout-ms}. */
    public static final Duration DEFAULT_MOE_TIMEOUT = Duration.ofSeconds(30);
    /**
     * Default of {@code --micro-batches}: the ping-pong pipeline. Measured with {@code moe up} on the
     * 2-core development machine while it was otherwise idle, two micro-batches gave 1.07-1.15x the
     * tokens/s of one; while three other engineers' builds kept every core busy they gave a median
     * 0.88x (nothing to overlap, and each half pays its own hops), which {@code --micro-batches 1}
     * avoids on such a host.
     */
    public static final int DEFAULT_MICRO_BATCHES = 2;

    /**
     * How to start an attention service: the settings every service has, those of a service that
     * may route MoE layers itself (embedded router: {@link MoeRoutingContext}), and its own.
     * Setters mirror {@code moe serve attention}'s flags; {@link #conclude()} fills the defaults and
     * checks every value, naming the flag.
     */
    public static final class Context extends MoeRoutingContext<Context> {
        private String id;
        private EngineOptions engine = EngineOptions.defaults();
        private int maxRunning = DEFAULT_MAX_RUNNING;
        private int maxQueued = DEFAULT_MAX_QUEUED;
        private Duration moeTimeout = DEFAULT_MOE_TIMEOUT;
        private int microBatches = DEFAULT_MICRO_BATCHES;

        /** This service's id in the cluster file ({@code --id}). Required. */
        public Context id(String id) {
            this.id = id;
            return this;
        }

        /** Threads, max-batch-tokens, max-seq-len and compute backend of the engine; default {@link EngineOptions#defaults()}. */
        public Context engine(EngineOptions engine) {
            this.engine = engine;
            return this;
        }

        /** Sequences decoding at once ({@code --max-running}); default {@value #DEFAULT_MAX_RUNNING}. */
        public Context maxRunning(int maxRunning) {
            this.maxRunning = maxRunning;
            return this;
        }

        /** Requests waiting beyond those ({@code --max-queued}); default {@value #DEFAULT_MAX_QUEUED}. */
        public Context maxQueued(int maxQueued) {
            this.maxQueued = maxQueued;
            return this;
        }

        /** How long one MoE layer may take before the step fails ({@code --moe-timeout-ms}); default 30 s. */
        public Context moeTimeout(Duration moeTimeout) {
            this.moeTimeout = moeTimeout;
            return this;
        }

        /**
         * Micro-batches per step ({@code --micro-batches}): 2 splits a step of two or more sequences
         * in two halves that alternate between attention here and the MoE layers (at the
         * router-service, or sent by the embedded router to the expert services): ping-pong, so both
         * sides compute at once; greedy tokens stay the same. Default {@value #DEFAULT_MICRO_BATCHES};
         * {@code moe up} passes 1 with an embedded router, whose halves would compete for one host's
         * cores.
         */
        public Context microBatches(int microBatches) {
            this.microBatches = microBatches;
            return this;
        }

        @Override
        protected Duration layerTimeout() {
            return moeTimeout;
        }

        @Override
        protected void concludeRouting() {
            Objects.requireNonNull(id, "--id is required");
            Objects.requireNonNull(engine, "engine options");
            cluster().attentionService(id); // fails naming the id when the file does not list it
            requireAtLeast("--max-running", maxRunning, 1);
            requireAtLeast("--max-queued", maxQueued, 0);
            requirePositiveMillis("--moe-timeout-ms", moeTimeout);
            if (microBatches < 1 || microBatches > 2) {
                throw new IllegalArgumentException("--micro-batches must be 1 or 2, got " + microBatches);
            }
        }
    }

    private final Closer resources;
    private final AttentionServer server;
    private final ServiceMetrics metrics;
    private final AeronLoss aeronLoss;

    private AttentionNode(Closer resources, AttentionServer server, ServiceMetrics metrics, AeronLoss aeronLoss) {
        this.resources = resources;
        this.server = server;
        this.metrics = metrics;
        this.aeronLoss = aeronLoss;
    }

    /** False once its Aeron client is gone ({@link AeronLoss}): its MoE layers cannot be computed. */
    public boolean serving() {
        return !aeronLoss.lost();
    }

    /** Loads the model and starts serving; on failure closes what it opened and rethrows. */
    public static AttentionNode launch(Context ctx) {
        ctx.conclude();
        ClusterSpec spec = ctx.cluster();
        ClusterSpec.Attention self = spec.attentionService(ctx.id);
        Closer resources = new Closer();
        // Set when the engine builds its MoE layers (during AttentionServer.start); read by Status.
        AtomicReference<EmbeddedRouter> embedded = new AtomicReference<>();
        try {
            AeronLoss loss = new AeronLoss("attention-service " + ctx.id, ctx.onAeronLost());
            Aeron aeron = resources.add(AeronClients.connect(spec.aeronDir(), loss));
            ServiceMetrics metrics = resources.add(ServiceMetrics.start("moe-attention", ctx.id, self.host(),
                    ctx.metricsPort()));
            ServiceTracing tracing = resources.add(ctx.tracing().start("moe-attention", ctx.id));
            DataPlaneMetrics.register(metrics.meter(), ctx.dataPlaneAuth());
            ServiceSecurity security = resources.add(ctx.security());
            security.logSummary("attention-service " + ctx.id);
            FeedForwardFactory feedForward = spec.embeddedRouter()
                    ? (config, loader, backend, maxTokens) -> {
                        AeronExpertDispatcher dispatcher = new AeronExpertDispatcher(ctx.dispatcher(aeron, config,
                                spec.channelOf(self), self.replyStreamId(), spec.senderId(self)));
                        MoeBlock moe = new MoeBlock(config, loader, TracedExpertDispatcher.wrap(dispatcher, tracing,
                                config.hiddenSize(), config.expertSlots()), backend, maxTokens);
                        RouterMetrics.register(metrics.meter(), moe, dispatcher, () -> 0);
                        TokenRates rates = new TokenRates(moe, dispatcher.placement(), Duration.ofSeconds(5));
                        embedded.set(new EmbeddedRouter(new DispatchStatus(moe, dispatcher, rates), rates));
                        return new FeedForwardLayers(config, loader, backend, maxTokens, moe);
                    }
                    : (config, loader, backend, maxTokens) -> new FeedForwardLayers(config, loader, backend, maxTokens,
                            routerClient(ctx, aeron, self, config, tracing));
            AttentionServer.Config config = new AttentionServer.Config(ctx.model(), self.host(), self.grpcPort(),
                    ctx.engine, ctx.maxRunning, ctx.maxQueued, feedForward, ctx.microBatches);
            if (spec.embeddedRouter()) {
                config = config.withEmbeddedRouter(() -> {
                    EmbeddedRouter r = embedded.get();
                    return r == null ? null : r.status();
                });
            }
            AttentionServer server = resources.add(AttentionServer.start(config, tracing, security));
            if (embedded.get() != null) {
                resources.add(embedded.get().rates()); // closed before the server, which frees the MoE block
            }
            loss.onLost(server::notServing);
            if (ctx.healthPort() > 0) {
                server.servePlainHealth(ctx.healthPort());
            }
            GenerationLoop loop = server.loop();
            metrics.meter().gaugeBuilder("moe.attention.running_sequences").ofLongs()
                    .setDescription("Sequences holding a KV cache and decoding")
                    .buildWithCallback(m -> m.record(loop.runningCount()));
            metrics.meter().gaugeBuilder("moe.attention.queued_sequences").ofLongs()
                    .setDescription("Requests waiting for a slot (queue depth)")
                    .buildWithCallback(m -> m.record(loop.queuedCount()));
            return new AttentionNode(resources, server, metrics, loss);
        } catch (RuntimeException e) {
            EmbeddedRouter r = embedded.get();
            if (r != null) {
                r.rates().close(); // idempotent: also in resources once the server started
            }
            throw resources.closeAfter(e);
        }
    }

    /** The in-process MoE router's status, and the sampler of its token rates (which the node closes). */
    private record EmbeddedRouter(DispatchStatus dispatch, TokenRates rates) {
        ClusterStatus status() {
            ClusterStatus.Builder b = ClusterStatus.newBuilder();
            dispatch.writeTo(b);
            return b.build();
        }
    }

    /** The standalone router's client: each MoE layer to the router-service, answers on this replica's stream. */
    private static FeedForward routerClient(Context ctx, Aeron aeron, ClusterSpec.Attention self, ModelConfig config,
                                            ServiceTracing tracing) {
        ClusterSpec spec = ctx.cluster();
        return new RemoteMoe(new RemoteMoe.Context()
                .aeron(aeron)
                .router(spec.channelOf(spec.router()), spec.router().moeStreamId())
                .replies(spec.channelOf(self), self.replyStreamId())
                .senderId(spec.senderId(self))
                .hiddenSize(config.hiddenSize())
                .timeout(ctx.moeTimeout)
                .publicationDeadline(ctx.publicationDeadline())
                .idleStrategy(ctx.idleStrategy())
                .dataPlaneAuth(ctx.dataPlaneAuth())
                .tracing(tracing));
    }

    public AttentionServer server() {
        return server;
    }

    public String address() {
        return server.address();
    }

    /** The Prometheus scrape URL, or null without metrics. */
    public String metricsEndpoint() {
        return metrics.endpoint();
    }

    /** Stops the server (which frees the engine), then metrics and the Aeron client. */
    @Override
    public void close() {
        aeronLoss.closing();
        resources.close();
    }
}
