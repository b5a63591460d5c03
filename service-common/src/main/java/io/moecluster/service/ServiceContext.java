package io.moecluster.service;

import io.moecluster.discovery.ClusterSpec;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.DataPlaneSettings;
import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The settings every service of a cluster has, whatever its role: the cluster file, the model,
 * the metrics port, tracing, and the data-plane settings. Each service's own context
 * ({@code ExpertNode.Context}, {@code AttentionNode.Context}, {@code RouterNode.Context}) extends
 * it; setter names follow the {@code moe serve} flags and errors name those flags.
 *
 * @param <C> the concrete context, returned by every setter for chaining
 */
public abstract class ServiceContext<C extends ServiceContext<C>> extends DataPlaneSettings<C> {
    private ClusterSpec cluster;
    private Path model;
    private int metricsPort;
    private TracingOptions tracing;
    private Consumer<Throwable> onAeronLost = cause -> { };

    /** The cluster file: where every service is, the Aeron directory. Required. */
    public C cluster(ClusterSpec cluster) {
        this.cluster = cluster;
        return self();
    }

    public ClusterSpec cluster() {
        return cluster;
    }

    /** The Hugging Face model directory ({@code --model}). Required. */
    public C model(Path model) {
        this.model = model;
        return self();
    }

    public Path model() {
        return model;
    }

    /** The Prometheus port ({@code --metrics-port}); 0, the default, serves no metrics. */
    public C metricsPort(int metricsPort) {
        this.metricsPort = metricsPort;
        return self();
    }

    public int metricsPort() {
        return metricsPort;
    }

    /** How requests and batches are traced; default: from the {@code OTEL_*} environment. */
    public C tracing(TracingOptions tracing) {
        this.tracing = tracing;
        return self();
    }

    public TracingOptions tracing() {
        return tracing;
    }

    /**
     * What to do, besides reporting NOT_SERVING, when the service's Aeron client dies under it
     * ({@link AeronLoss}); runs on an Aeron thread and must not block. Default: nothing more (a
     * service in a test, or embedded in another program). {@code moe serve} exits the process with
     * {@link AeronLoss#EXIT_STATUS} so that its supervisor restarts it.
     */
    public C onAeronLost(Consumer<Throwable> onAeronLost) {
        this.onAeronLost = Objects.requireNonNull(onAeronLost, "onAeronLost");
        return self();
    }

    public Consumer<Throwable> onAeronLost() {
        return onAeronLost;
    }

    @Override
    protected final void concludeSettings() {
        Objects.requireNonNull(cluster, "--cluster: the cluster file is required");
        Objects.requireNonNull(model, "--model is required");
        if (metricsPort < 0 || metricsPort > 65535) {
            throw new IllegalArgumentException("--metrics-port must be in 0-65535, got " + metricsPort);
        }
        if (tracing == null) {
            tracing = TracingOptions.fromEnvironment();
        }
        concludeService();
    }

    /** The service's own defaults and checks. */
    protected abstract void concludeService();
}
