package io.moecluster.router;

import io.aeron.Aeron;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.core.moe.MoeBlock;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;
import io.moecluster.dispatch.AeronExpertDispatcher;
import io.moecluster.dispatch.ExpertDispatchOptions;
import io.moecluster.dispatch.RouterMetrics;
import io.moecluster.dispatch.TokenRates;
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
import java.util.ArrayList;
import java.util.List;
import org.slf4j.LoggerFactory;

/**
 * The router-service of a cluster, as the cluster file describes it: the public gRPC API in front
 * of the attention replicas and, unless the attention replicas embed the router, the MoE data
 * plane ({@link MoeService}) that gates each layer and dispatches to the expert services.
 */
public final class RouterNode implements AutoCloseable {
    private final RouterServer server;
    private final List<AutoCloseable> parts;
    private final ServiceMetrics metrics;

    private RouterNode(RouterServer server, List<AutoCloseable> parts, ServiceMetrics metrics) {
        this.server = server;
        this.parts = parts;
        this.metrics = metrics;
    }

    /**
     * @param maxBatchTokens the attention replicas' max-batch-tokens: the largest MoE request
     * @param threads threads for the gate matmuls; 0 = one per core
     */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, Duration expertTimeout) {
        return start(spec, model, maxActiveRequests, maxSeqLen, maxBatchTokens, threads, expertTimeout, 0);
    }

    /** @param metricsPort the Prometheus port; below 1 = no metrics */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, Duration expertTimeout, int metricsPort) {
        return start(spec, model, maxActiveRequests, maxSeqLen, maxBatchTokens, threads,
                ExpertDispatchOptions.fixed(expertTimeout), metricsPort);
    }

    /** @param tracingOptions request and dispatch spans (off unless OTEL_* asks, by default) */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, Duration expertTimeout, int metricsPort,
                                   TracingOptions tracingOptions) {
        return start(spec, model, maxActiveRequests, maxSeqLen, maxBatchTokens, threads,
                ExpertDispatchOptions.fixed(expertTimeout), metricsPort, tracingOptions);
    }

    /**
     * @param dispatch where the expert replicas are found (a registry, watched) and how long they may take
     * @param metricsPort the Prometheus port; below 1 = no metrics
     */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, ExpertDispatchOptions dispatch, int metricsPort) {
        return start(spec, model, maxActiveRequests, maxSeqLen, maxBatchTokens, threads, dispatch, metricsPort,
                TracingOptions.fromEnvironment());
    }

    /**
     * @param dispatch where the expert replicas are found (a registry, watched) and how long they may take
     * @param metricsPort the Prometheus port; below 1 = no metrics
     * @param tracingOptions request and dispatch spans (off unless OTEL_* asks, by default)
     */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, ExpertDispatchOptions dispatch, int metricsPort,
                                   TracingOptions tracingOptions) {
        ServiceTracing tracing = tracingOptions.start("moe-router", spec.router().id());
        ModelConfig config = ModelConfig.load(model);
        List<String> attention = new ArrayList<>();
        for (ClusterSpec.Attention a : spec.attention()) {
            attention.add(a.host() + ":" + a.grpcPort());
        }
        List<ClusterStatusContributor> contributors = new ArrayList<>();
        ServiceMetrics metrics = ServiceMetrics.start(
                "moe-router", spec.router().id(), spec.router().host(), metricsPort);
        List<AutoCloseable> parts = new ArrayList<>();
        try {
            if (spec.embeddedRouter()) {
                contributors.add(status -> {
                    for (ClusterSpec.Expert e : spec.experts()) {
                        status.addServices(ServiceStatus.newBuilder().setInstanceId(e.id())
                                .setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                                .setEndpoint(spec.channelOf(e) + " stream " + e.streamId()).setHealthy(true)
                                .addAllExperts(e.experts()).setFirstLayer(e.firstLayer()).setLastLayer(e.lastLayer()));
                    }
                });
            } else {
                Checkpoint checkpoint = Checkpoint.open(model);
                parts.add(checkpoint);
                WeightLoader loader = new WeightLoader(checkpoint, config);
                parts.add(loader);
                WorkerPool pool = new WorkerPool(threads > 0 ? threads : Runtime.getRuntime().availableProcessors(), "router");
                parts.add(pool);
                ComputeBackend backend = ComputeBackends.open(ComputeBackends.DEFAULT, pool);
                parts.add(backend);
                Aeron aeron = AeronClients.connect(spec.aeronDir());
                parts.add(aeron);
                PlacementWatch watch = PlacementWatch.start(spec, config, dispatch.registry());
                parts.add(watch);
                int slots = config.expertSlots();
                AeronExpertDispatcher dispatcher = new AeronExpertDispatcher(aeron, spec.channelOf(spec.router()),
                        watch.placement(), ClusterSpec.ROUTER_SENDER, spec.router().replyStreamId(), config.hiddenSize(),
                        slots, ElementType.F32, dispatch.replyTimeout(), dispatch.attemptTimeout(), dispatch.publishDeadline());
                MoeBlock router = new MoeBlock(config, loader, TracedExpertDispatcher.wrap(
                        dispatcher, tracing, config.hiddenSize(), slots), backend, maxBatchTokens);
                MoeService moe = new MoeService(aeron, spec.channelOf(spec.router()), spec.router().moeStreamId(), config,
                        router, ClusterSpec.ROUTER_SENDER, maxBatchTokens, spec::replyChannel).tracing(tracing).start();
                // Closed before the pool, Aeron client and weights it uses (parts close in reverse).
                parts.add(moe);
                RouterMetrics.register(metrics.meter(), router, dispatcher, moe::malformedDropped);
                moe.registerMetrics(metrics.meter());
                TokenRates rates = new TokenRates(router, watch.placement(), Duration.ofSeconds(5));
                parts.add(rates);
                contributors.add(new ExpertStatus(router, dispatcher, rates));
            }
            RouterServer server = RouterServer.start(new RouterServer.Config(model, spec.router().host(),
                    spec.router().grpcPort(), attention, maxActiveRequests, maxSeqLen, contributors, metrics.meter()), tracing);
            return new RouterNode(server, parts, metrics);
        } catch (RuntimeException e) {
            tracing.close();
            metrics.close();
            closeAll(parts);
            throw e;
        }
    }

    private static void closeAll(List<AutoCloseable> parts) {
        for (int i = parts.size() - 1; i >= 0; i--) {
            try {
                parts.get(i).close();
            } catch (Exception e) {
                LoggerFactory.getLogger(RouterNode.class).warn("closing {}: {}", parts.get(i), e.toString());
            }
        }
    }

    public RouterServer server() {
        return server;
    }

    public String address() {
        return server.address();
    }

    /** The MoE data plane, or null in embedded-router mode. */
    public MoeService moe() {
        for (AutoCloseable p : parts) {
            if (p instanceof MoeService m) {
                return m;
            }
        }
        return null;
    }

    /** The Prometheus scrape URL, or null without metrics. */
    public String metricsEndpoint() {
        return metrics.endpoint();
    }

    @Override
    public void close() {
        metrics.close();
        server.close();
        closeAll(parts);
    }
}
