package io.moecluster.expert;

import io.aeron.Aeron;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.io.Closer;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.service.AeronLoss;
import io.moecluster.service.DataPlaneMetrics;
import io.moecluster.service.HealthPort;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.service.ServiceContext;
import io.moecluster.telemetry.ServiceMetrics;
import io.moecluster.telemetry.ServiceTracing;
import io.moecluster.transport.AeronClients;
import io.moecluster.transport.AgentRunners;
import io.moecluster.transport.IdleStrategies;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import java.util.Objects;
import org.agrona.concurrent.AgentRunner;
import org.slf4j.LoggerFactory;

/**
 * One running expert service, as the cluster file describes it: its checkpoint (only the hosted
 * experts' tensors are mapped), its bank on the chosen compute backend, and the agent that serves
 * token batches over Aeron. Built from a {@link Context}:
 *
 * <pre>{@code
 * ExpertNode node = ExpertNode.launch(new ExpertNode.Context()
 *         .cluster(spec).id("expert-0").model(dir).threads(2).maxRows(256));
 * }</pre>
 */
public final class ExpertNode implements AutoCloseable {
    /**
     * How to start an expert service: the settings every service has ({@link ServiceContext}) and
     * its own. Setters mirror {@code moe serve expert}'s flags; {@link #conclude()} fills the
     * defaults and checks every value, naming the flag.
     */
    public static final class Context extends ServiceContext<Context> {
        private String id;
        private int threads;
        private int maxRows = EngineOptions.DEFAULT_MAX_BATCH_TOKENS;
        private String device = ComputeBackends.DEFAULT;

        /** This service's id in the cluster file ({@code --id}). Required. */
        public Context id(String id) {
            this.id = id;
            return this;
        }

        /** Compute threads ({@code --threads}); 0 = one per core, the default. */
        public Context threads(int threads) {
            this.threads = threads;
            return this;
        }

        /** Most tokens of one batch ({@code --max-rows}): at least the attention services' max-batch-tokens. */
        public Context maxRows(int maxRows) {
            this.maxRows = maxRows;
            return this;
        }

        /**
         * Where the experts compute ({@code --device}): {@code cpu}, the default, or {@code cuda} /
         * {@code cuda:N} (a GPU, with the cuda module on the class path).
         */
        public Context device(String device) {
            this.device = device;
            return this;
        }

        @Override
        protected void concludeService() {
            Objects.requireNonNull(id, "--id is required");
            cluster().expertService(id); // fails naming the id when the file does not list it
            requireAtLeast("--threads", threads, 0);
            requireAtLeast("--max-rows", maxRows, 1);
            // An unknown name fails here listing the known ones, a backend that cannot run here with its
            // reasons: before anything is mapped, connected or announced.
            ComputeBackends.requireAvailable(device);
        }
    }

    private final Closer resources;
    private final ExpertWorker worker;
    private final ServiceMetrics metrics;
    private final AeronLoss aeronLoss;
    private final ServiceSecurity security;
    private final int plainHealthPort;
    private volatile HealthEndpoint health;

    private ExpertNode(Closer resources, ExpertWorker worker, ServiceMetrics metrics, AeronLoss aeronLoss,
                       ServiceSecurity security, int plainHealthPort) {
        this.resources = resources;
        this.worker = worker;
        this.metrics = metrics;
        this.aeronLoss = aeronLoss;
        this.security = security;
        this.plainHealthPort = plainHealthPort;
    }

    /** Loads the hosted experts and starts serving; on failure closes what it opened and rethrows. */
    public static ExpertNode launch(Context ctx) {
        ctx.conclude();
        ClusterSpec spec = ctx.cluster();
        ClusterSpec.Expert self = spec.expertService(ctx.id);
        ModelConfig config = ModelConfig.load(ctx.model());
        BitSet experts = new BitSet();
        self.experts().forEach(experts::set);
        Closer resources = new Closer();
        try {
            ServiceTracing tracing = resources.add(ctx.tracing().start("moe-expert", ctx.id));
            ServiceSecurity security = resources.add(ctx.security());
            Checkpoint checkpoint = resources.add(Checkpoint.open(ctx.model()));
            WeightLoader loader = resources.add(new WeightLoader(checkpoint, config));
            WorkerPool pool = resources.add(new WorkerPool(EngineOptions.resolveThreads(ctx.threads), "expert-" + ctx.id));
            ComputeBackend backend = resources.add(ComputeBackends.open(ctx.device, pool));
            int last = Math.min(self.lastLayer(), config.numLayers() - 1);
            ExpertBank bank = resources.add(new ExpertBank(config, loader, experts, self.firstLayer(), last, backend,
                    ctx.maxRows));
            AeronLoss loss = new AeronLoss("expert-service " + ctx.id, ctx.onAeronLost());
            Aeron aeron = resources.add(AeronClients.connect(spec.aeronDir(), loss));
            ExpertWorker worker = resources.add(new ExpertWorker(ctx.id, aeron, spec.channelOf(self), self.streamId(),
                    config, bank, spec.experts().indexOf(self) + 100, spec::replyChannel, ctx.publicationDeadline(),
                    ctx.dataPlaneAuth(), tracing));
            AgentRunner runner = resources.add(AgentRunners.start(worker.agent(), IdleStrategies.parse(ctx.idleStrategy())));
            ServiceMetrics metrics = resources.add(ServiceMetrics.start("moe-expert", ctx.id, "127.0.0.1", ctx.metricsPort()));
            ExpertMetrics.register(metrics.meter(), worker);
            DataPlaneMetrics.register(metrics.meter(), ctx.dataPlaneAuth());
            return new ExpertNode(resources, worker, metrics, loss, security, ctx.healthPort());
        } catch (RuntimeException e) {
            throw resources.closeAfter(e);
        }
    }

    /**
     * Serves the gRPC health service on {@code bind:port} (0 = a free port) for probes, with TLS
     * when the service has it; and, with a {@code --health-port}, on that plaintext port too.
     *
     * @return the port
     */
    public int serveHealth(String bind, int port) {
        HealthEndpoint h = resources.add(HealthEndpoint.start(bind, port, security));
        health = h;
        aeronLoss.onLost(h::notServing);
        if (plainHealthPort > 0) {
            resources.add(HealthPort.start(bind, plainHealthPort, h.health()));
        }
        return h.port();
    }

    public ExpertWorker worker() {
        return worker;
    }

    /** False once its Aeron client is gone ({@link AeronLoss}): it can serve nothing more. */
    public boolean serving() {
        return !aeronLoss.lost();
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
        if (aeronLoss.lost()) {
            close(); // nothing can arrive any more: no drain
            return;
        }
        aeronLoss.closing();
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

    /** Stops serving (health first, then metrics, the agent, Aeron), then frees the weights. */
    @Override
    public void close() {
        aeronLoss.closing();
        resources.close();
    }
}
