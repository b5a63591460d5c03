package io.moecluster.service;

import io.moecluster.discovery.ClusterSpec;
import io.moecluster.service.security.ApiTokens;
import io.moecluster.service.security.ServiceSecurity;
import io.moecluster.service.security.TlsSettings;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.DataPlaneSettings;
import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The settings every service of a cluster has, whatever its role: the cluster file, the model,
 * the metrics port, tracing, and the data-plane settings. Each service's own context
 * ({@code ExpertNode.Context}, {@code AttentionNode.Context}, {@code RouterNode.Context}) extends
 * it; setter names follow the {@code moe serve} flags and errors name those flags.
 *
 * @param <C> the concrete context, returned by every setter for chaining
 */
public abstract class ServiceContext<C extends ServiceContext<C>> extends DataPlaneSettings<C> {
    private static final Logger LOG = LoggerFactory.getLogger(ServiceContext.class);
    private ClusterSpec cluster;
    private Path model;
    private int metricsPort;
    private TracingOptions tracing;
    private Consumer<Throwable> onAeronLost = cause -> { };
    private TlsSettings tls;
    private Path apiTokensFile;
    private ApiTokens apiTokens;
    private int healthPort;

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

    /**
     * TLS on this service's gRPC and HTTP ports ({@code --tls-cert}, {@code --tls-key}, {@code --tls-ca});
     * null, the default, leaves them plaintext.
     */
    public C tls(TlsSettings tls) {
        this.tls = tls;
        return self();
    }

    public TlsSettings tls() {
        return tls;
    }

    /** The public API's bearer tokens ({@code --api-tokens}; see {@link ApiTokens}); null = none. */
    public C apiTokens(Path file) {
        this.apiTokensFile = file;
        return self();
    }

    public Path apiTokens() {
        return apiTokensFile;
    }

    /**
     * A plaintext port serving only gRPC health ({@code --health-port}), for probes that speak no
     * TLS (Kubernetes' gRPC probes); 0, the default, none.
     */
    public C healthPort(int healthPort) {
        this.healthPort = healthPort;
        return self();
    }

    public int healthPort() {
        return healthPort;
    }

    /** This service's TLS material and tokens, loaded (the caller closes it, which stops the reloads). */
    public ServiceSecurity security() {
        return ServiceSecurity.of(tls, apiTokens);
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
        if (healthPort < 0 || healthPort > 65535) {
            throw new IllegalArgumentException("--health-port must be in 0-65535, got " + healthPort);
        }
        if (apiTokensFile != null && apiTokens == null) {
            try {
                apiTokens = ApiTokens.load(apiTokensFile);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("--api-tokens: " + e.getMessage(), e);
            }
        }
        concludeService();
        if (dataPlaneAuth().enabled()) {
            LOG.info(dataPlaneAuth().describe());
        } else {
            LOG.warn(dataPlaneAuth().describe());
        }
    }

    /** The service's own defaults and checks. */
    protected abstract void concludeService();
}
