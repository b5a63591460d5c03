package io.moecluster.router.api;

import io.aeron.Aeron;
import io.moecluster.core.forward.ExpertBank;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.proto.v1.ExpertLoad;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;
import io.moecluster.router.AeronExpertDispatcher;
import io.moecluster.core.forward.MoeRouter;
import io.moecluster.router.MoeService;
import io.moecluster.router.placement.ClusterSpec;
import io.moecluster.router.placement.ExpertPlacement;
import io.moecluster.sbe.ElementType;
import io.moecluster.transport.AeronClients;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The router-service of a cluster, as the cluster file describes it: the public gRPC API in front
 * of the attention replicas and, unless the attention replicas embed the router, the MoE data
 * plane ({@link MoeService}) that gates each layer and dispatches to the expert services.
 */
public final class RouterNode implements AutoCloseable {
    private final RouterServer server;
    private final MoeService moe;
    private final Aeron aeron;
    private final WorkerPool pool;
    private final WeightLoader loader;
    private final Checkpoint checkpoint;

    private final io.moecluster.telemetry.ServiceMetrics metrics;

    private RouterNode(RouterServer server, MoeService moe, Aeron aeron, WorkerPool pool, WeightLoader loader,
                       Checkpoint checkpoint, io.moecluster.telemetry.ServiceMetrics metrics) {
        this.metrics = metrics;
        this.server = server;
        this.moe = moe;
        this.aeron = aeron;
        this.pool = pool;
        this.loader = loader;
        this.checkpoint = checkpoint;
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
        return start(spec, model, maxActiveRequests, maxSeqLen, maxBatchTokens, threads, expertTimeout, metricsPort,
                io.moecluster.telemetry.TracingOptions.fromEnvironment());
    }

    /** @param tracingOptions request and dispatch spans (off unless OTEL_* asks, by default) */
    public static RouterNode start(ClusterSpec spec, Path model, int maxActiveRequests, int maxSeqLen,
                                   int maxBatchTokens, int threads, Duration expertTimeout, int metricsPort,
                                   io.moecluster.telemetry.TracingOptions tracingOptions) {
        io.moecluster.telemetry.ServiceTracing tracing = tracingOptions.start("moe-router", spec.router().id());
        ModelConfig config = ModelConfig.load(model);
        List<String> attention = new ArrayList<>();
        for (ClusterSpec.Attention a : spec.attention()) {
            attention.add(a.host() + ":" + a.grpcPort());
        }
        List<ClusterStatusContributor> contributors = new ArrayList<>();
        contributors.add(status -> {
            for (ClusterSpec.Expert e : spec.experts()) {
                status.addServices(ServiceStatus.newBuilder().setInstanceId(e.id()).setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                        .setEndpoint(spec.channelOf(e) + " stream " + e.streamId()).setHealthy(true)
                        .addAllExperts(e.experts()).setFirstLayer(e.firstLayer()).setLastLayer(e.lastLayer()));
            }
        });
        io.moecluster.telemetry.ServiceMetrics metrics = io.moecluster.telemetry.ServiceMetrics.start(
                "moe-router", spec.router().id(), spec.router().host(), metricsPort);
        MoeService moe = null;
        Aeron aeron = null;
        WorkerPool pool = null;
        WeightLoader loader = null;
        Checkpoint checkpoint = null;
        try {
            if (!spec.embeddedRouter()) {
                checkpoint = Checkpoint.open(model);
                loader = new WeightLoader(checkpoint, config);
                pool = new WorkerPool(threads > 0 ? threads : Runtime.getRuntime().availableProcessors(), "router");
                aeron = AeronClients.connect(spec.aeronDir());
                ExpertPlacement placement = ExpertPlacement.build(spec, config);
                int slots = ExpertBank.sharedExpertId(config) + (config.hasSharedExpert() ? 1 : 0);
                AeronExpertDispatcher dispatcher = new AeronExpertDispatcher(aeron, spec, placement, ClusterSpec.ROUTER_SENDER,
                        spec.router().replyStreamId(), config.hiddenSize(), slots, ElementType.F32, expertTimeout,
                        Duration.ofSeconds(2));
                MoeRouter router = new MoeRouter(config, loader, io.moecluster.router.TracedExpertDispatcher.wrap(
                        dispatcher, tracing, config.hiddenSize(), slots), pool, maxBatchTokens);
                moe = new MoeService(aeron, spec.channelOf(spec.router()), spec.router().moeStreamId(), config, router,
                        ClusterSpec.ROUTER_SENDER, maxBatchTokens, spec::replyChannel).tracing(tracing).start();
                io.moecluster.router.RouterMetrics.register(metrics.meter(), router, dispatcher, moe);
                MoeRouter counted = router;
                contributors.add(status -> {
                    for (int e = 0; e < counted.expertSlots(); e++) {
                        status.addExpertLoad(ExpertLoad.newBuilder().setExpert(e).setTokensRouted(counted.tokensRouted(e)));
                    }
                });
            }
            RouterServer server = RouterServer.start(new RouterServer.Config(model, spec.router().host(),
                    spec.router().grpcPort(), attention, maxActiveRequests, maxSeqLen, contributors, metrics.meter()), tracing);
            return new RouterNode(server, moe, aeron, pool, loader, checkpoint, metrics);
        } catch (RuntimeException e) {
            tracing.close();
            metrics.close();
            closeAll(moe, aeron, pool, loader, checkpoint);
            throw e;
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
        return moe;
    }

    private static void closeAll(MoeService moe, Aeron aeron, WorkerPool pool, WeightLoader loader, Checkpoint checkpoint) {
        if (moe != null) {
            moe.close();
        }
        if (aeron != null) {
            aeron.close();
        }
        if (pool != null) {
            pool.close();
        }
        if (loader != null) {
            loader.close();
        }
        if (checkpoint != null) {
            checkpoint.close();
        }
    }

    /** The Prometheus scrape URL, or null without metrics. */
    public String metricsEndpoint() {
        return metrics.endpoint();
    }

    @Override
    public void close() {
        metrics.close();
        server.close();
        closeAll(moe, aeron, pool, loader, checkpoint);
    }
}
