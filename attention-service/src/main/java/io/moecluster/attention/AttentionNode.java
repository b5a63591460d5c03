package io.moecluster.attention;

import io.aeron.Aeron;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.attention.FeedForwardLayers;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.core.attention.FeedForwardFactory;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.dispatch.AeronExpertDispatcher;
import io.moecluster.dispatch.ExpertDispatchOptions;
import io.moecluster.dispatch.RouterMetrics;
import io.moecluster.dispatch.TracedExpertDispatcher;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.placement.PlacementWatch;
import io.moecluster.sbe.ElementType;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.AeronClients;
import java.nio.file.Path;
import java.time.Duration;

/**
 * One attention replica of a cluster, as the cluster file describes it: the attention server
 * whose engine hands each MoE layer either to the router-service over Aeron ({@link RemoteMoe}) or,
 * in embedded-router mode, to an in-process {@link MoeBlock} that dispatches to the expert
 * services itself. Dense MLP layers run here in both modes.
 */
public final class AttentionNode implements AutoCloseable {
    private final Aeron aeron;
    private final AttentionServer server;
    private final ServiceMetrics metrics;

    private AttentionNode(Aeron aeron, AttentionServer server, ServiceMetrics metrics) {
        this.aeron = aeron;
        this.server = server;
        this.metrics = metrics;
    }

    /** @param moeTimeout how long one MoE layer may take before the step fails */
    public static AttentionNode start(ClusterSpec spec, String id, Path model, EngineOptions engine, int maxRunning,
                                      int maxQueued, Duration moeTimeout) {
        return start(spec, id, model, engine, maxRunning, maxQueued, moeTimeout, 0);
    }

    /** @param metricsPort the Prometheus port; below 1 = no metrics */
    public static AttentionNode start(ClusterSpec spec, String id, Path model, EngineOptions engine, int maxRunning,
                                      int maxQueued, Duration moeTimeout, int metricsPort) {
        return start(spec, id, model, engine, maxRunning, maxQueued, ExpertDispatchOptions.fixed(moeTimeout), metricsPort);
    }

    /** @param tracingOptions step, layer and dispatch spans (off unless OTEL_* asks, by default) */
    public static AttentionNode start(ClusterSpec spec, String id, Path model, EngineOptions engine, int maxRunning,
                                      int maxQueued, Duration moeTimeout, int metricsPort,
                                      TracingOptions tracingOptions) {
        return start(spec, id, model, engine, maxRunning, maxQueued, ExpertDispatchOptions.fixed(moeTimeout), metricsPort,
                tracingOptions);
    }

    /**
     * @param dispatch the MoE timeout ({@code replyTimeout}: how long one MoE layer may take before
     *     the step fails) and, in embedded-router mode, where the expert replicas are found
     * @param metricsPort the Prometheus port; below 1 = no metrics
     */
    public static AttentionNode start(ClusterSpec spec, String id, Path model, EngineOptions engine, int maxRunning,
                                      int maxQueued, ExpertDispatchOptions dispatch, int metricsPort) {
        return start(spec, id, model, engine, maxRunning, maxQueued, dispatch, metricsPort,
                TracingOptions.fromEnvironment());
    }

    /**
     * @param dispatch the MoE timeout ({@code replyTimeout}: how long one MoE layer may take before
     *     the step fails) and, in embedded-router mode, where the expert replicas are found
     * @param metricsPort the Prometheus port; below 1 = no metrics
     * @param tracingOptions step, layer and dispatch spans (off unless OTEL_* asks, by default)
     */
    public static AttentionNode start(ClusterSpec spec, String id, Path model, EngineOptions engine, int maxRunning,
                                      int maxQueued, ExpertDispatchOptions dispatch, int metricsPort,
                                      TracingOptions tracingOptions) {
        Duration moeTimeout = dispatch.replyTimeout();
        ServiceTracing tracing = tracingOptions.start("moe-attention", id);
        ClusterSpec.Attention self = spec.attentionService(id);
        ModelConfig config = ModelConfig.load(model);
        int senderId = spec.senderId(self);
        Aeron aeron = AeronClients.connect(spec.aeronDir());
        ServiceMetrics metrics = ServiceMetrics.start(
                "moe-attention", id, self.host(), metricsPort);
        FeedForwardFactory feedForward = spec.embeddedRouter()
                ? (cfg, loader, pool, maxTokens) -> {
                    PlacementWatch watch = PlacementWatch.start(spec, cfg, dispatch.registry());
                    int slots = cfg.expertSlots();
                    AeronExpertDispatcher dispatcher = new AeronExpertDispatcher(aeron, spec.channelOf(self),
                            watch.placement(), senderId, self.replyStreamId(), cfg.hiddenSize(), slots, ElementType.F32,
                            moeTimeout, dispatch.attemptTimeout(), dispatch.publishDeadline()).closing(watch);
                    MoeBlock router = new MoeBlock(cfg, loader, TracedExpertDispatcher.wrap(
                            dispatcher, tracing, cfg.hiddenSize(), slots), pool, maxTokens);
                    RouterMetrics.register(metrics.meter(), router, dispatcher, () -> 0);
                    return new FeedForwardLayers(cfg, loader, pool, maxTokens, router);
                }
                : (cfg, loader, pool, maxTokens) -> new FeedForwardLayers(cfg, loader, pool, maxTokens,
                        new RemoteMoe(aeron, spec.channelOf(spec.router()), spec.router().moeStreamId(),
                                spec.channelOf(self), self.replyStreamId(), senderId, cfg.hiddenSize(), moeTimeout)
                                .tracing(tracing));
        try {
            AttentionServer server = AttentionServer.start(new AttentionServer.Config(model, self.host(), self.grpcPort(),
                    engine, maxRunning, maxQueued, feedForward), tracing);
            GenerationLoop loop = server.loop();
            metrics.meter().gaugeBuilder("moe.attention.running_sequences").ofLongs()
                    .setDescription("Sequences holding a KV cache and decoding")
                    .buildWithCallback(m -> m.record(loop.runningCount()));
            metrics.meter().gaugeBuilder("moe.attention.queued_sequences").ofLongs()
                    .setDescription("Requests waiting for a slot (queue depth)")
                    .buildWithCallback(m -> m.record(loop.queuedCount()));
            return new AttentionNode(aeron, server, metrics);
        } catch (RuntimeException e) {
            metrics.close();
            aeron.close();
            throw e;
        }
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

    @Override
    public void close() {
        metrics.close();
        server.close();
        aeron.close();
    }
}
