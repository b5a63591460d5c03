package io.moecluster.expert;

import io.aeron.Aeron;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.AeronClients;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import org.slf4j.LoggerFactory;

/**
 * One running expert service: its checkpoint (only the hosted experts' tensors are mapped), its
 * bank, and the Aeron worker that serves it, as the cluster file describes it.
 */
public final class ExpertNode implements AutoCloseable {
    private final Aeron aeron;
    private final Checkpoint checkpoint;
    private final WeightLoader loader;
    private final WorkerPool pool;
    private final ExpertBank bank;
    private final ExpertWorker worker;
    private final ServiceMetrics metrics;
    private volatile HealthEndpoint health;

    private ExpertNode(Aeron aeron, Checkpoint checkpoint, WeightLoader loader, WorkerPool pool, ExpertBank bank,
                       ExpertWorker worker, ServiceMetrics metrics) {
        this.metrics = metrics;
        this.aeron = aeron;
        this.checkpoint = checkpoint;
        this.loader = loader;
        this.pool = pool;
        this.bank = bank;
        this.worker = worker;
    }

    /**
     * @param threads compute threads; 0 = one per core
     * @param maxRows most tokens of one batch: at least the attention side's max-batch-tokens
     */
    public static ExpertNode start(ClusterSpec spec, String id, Path model, int threads, int maxRows) {
        return start(spec, id, model, threads, maxRows, 0);
    }

    /** @param metricsPort the Prometheus port; below 1 = no metrics */
    public static ExpertNode start(ClusterSpec spec, String id, Path model, int threads, int maxRows, int metricsPort) {
        return start(spec, id, model, threads, maxRows, metricsPort, TracingOptions.fromEnvironment());
    }

    /** @param tracing how this service traces its batches (off unless OTEL_* asks, by default) */
    public static ExpertNode start(ClusterSpec spec, String id, Path model, int threads, int maxRows, int metricsPort,
                                   TracingOptions tracing) {
        ClusterSpec.Expert self = spec.expertService(id);
        ModelConfig config = ModelConfig.load(model);
        BitSet experts = new BitSet();
        self.experts().forEach(experts::set);
        Checkpoint checkpoint = Checkpoint.open(model);
        WeightLoader loader = new WeightLoader(checkpoint, config);
        WorkerPool pool = new WorkerPool(threads > 0 ? threads : Runtime.getRuntime().availableProcessors(), "expert-" + id);
        ExpertBank bank = null;
        Aeron aeron = null;
        ServiceTracing traces = tracing.start("moe-expert", id);
        try {
            int last = Math.min(self.lastLayer(), config.numLayers() - 1);
            bank = new ExpertBank(config, loader, experts, self.firstLayer(), last,
                    ComputeBackends.open(ComputeBackends.DEFAULT, pool), maxRows);
            aeron = AeronClients.connect(spec.aeronDir());
            ExpertWorker worker = new ExpertWorker(id, aeron, spec.channelOf(self), self.streamId(), config, bank,
                    spec.experts().indexOf(self) + 100, spec::replyChannel).tracing(traces).start();
            ServiceMetrics metrics = ServiceMetrics.start(
                    "moe-expert", id, "127.0.0.1", metricsPort);
            ExpertMetrics.register(metrics.meter(), worker);
            return new ExpertNode(aeron, checkpoint, loader, pool, bank, worker, metrics).tracing(traces);
        } catch (RuntimeException e) {
            traces.close();
            if (aeron != null) {
                aeron.close();
            }
            if (bank != null) {
                bank.close();
            }
            pool.close();
            loader.close();
            checkpoint.close();
            throw e;
        }
    }

    /**
     * Serves the gRPC health service on {@code bind:port} (0 = a free port) for probes.
     *
     * @return the port
     */
    public int serveHealth(String bind, int port) {
        health = HealthEndpoint.start(bind, port);
        return health.port();
    }

    private ServiceTracing tracing = ServiceTracing.off();

    private ExpertNode tracing(ServiceTracing tracing) {
        this.tracing = tracing;
        return this;
    }

    public ExpertWorker worker() {
        return worker;
    }

    /** The Prometheus scrape URL, or null without metrics. */
    public String metricsEndpoint() {
        return metrics.endpoint();
    }

    /**
     * A graceful stop: serves until no batch has come for {@code quiet} (at most {@code max}), so
     * batches the routers sent before they dropped this service are answered, then closes.
     */
    public void drainAndClose(Duration quiet, Duration max) {
        if (health != null) {
            health.draining();
        }
        try {
            if (!worker.drain(quiet, max)) {
                LoggerFactory.getLogger(ExpertNode.class).warn(
                        "{}: batches still arriving after {} s of draining; stopping anyway", worker.id(), max.toSeconds());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        close();
    }

    @Override
    public void close() {
        if (health != null) {
            health.close();
        }
        metrics.close();
        worker.close();
        aeron.close();
        bank.close();
        pool.close();
        loader.close();
        checkpoint.close();
        tracing.close();
    }
}
