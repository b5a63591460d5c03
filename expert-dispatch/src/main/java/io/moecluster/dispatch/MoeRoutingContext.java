package io.moecluster.dispatch;

import io.aeron.Aeron;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ServiceRegistry;
import io.moecluster.dispatch.placement.PlacementWatch;
import io.moecluster.service.ServiceContext;
import java.time.Duration;

/**
 * The settings of a service that routes MoE layers to expert services: the router-service, or an
 * attention service with the router embedded. Both find the expert replicas the same way and treat
 * a slow one the same way.
 *
 * @param <C> the concrete context, returned by every setter for chaining
 */
public abstract class MoeRoutingContext<C extends MoeRoutingContext<C>> extends ServiceContext<C> {
    private ServiceRegistry registry;
    private Duration replicaTimeout;

    /**
     * Where expert replicas are found and watched ({@code --discovery}); null, the default, is the
     * cluster file's list, fixed at start.
     */
    public C registry(ServiceRegistry registry) {
        this.registry = registry;
        return self();
    }

    public ServiceRegistry registry() {
        return registry;
    }

    /**
     * How long one expert replica may take with a batch before it also goes to another
     * ({@code --replica-timeout-ms}); default min(2 s, the layer's timeout).
     */
    public C replicaTimeout(Duration replicaTimeout) {
        this.replicaTimeout = replicaTimeout;
        return self();
    }

    public Duration replicaTimeout() {
        return replicaTimeout;
    }

    /** How long one MoE layer may wait for its expert answers; the flag that sets it differs by service. */
    protected abstract Duration layerTimeout();

    @Override
    protected final void concludeService() {
        concludeRouting();
        if (replicaTimeout == null) {
            replicaTimeout = AeronExpertDispatcher.attemptTimeoutFor(layerTimeout());
        }
        requirePositiveMillis("--replica-timeout-ms", replicaTimeout);
    }

    /** The service's own defaults and checks, before the routing ones (which use {@link #layerTimeout()}). */
    protected abstract void concludeRouting();

    /**
     * The dispatcher of this service: answers on {@code replyChannel}/{@code replyStreamId} as
     * {@code senderId}, over the placement its registry keeps current (the watch closes with the
     * dispatcher).
     */
    public AeronExpertDispatcher.Context dispatcher(Aeron aeron, ModelConfig config, String replyChannel,
                                                    int replyStreamId, int senderId) {
        ClusterSpec spec = cluster();
        return new AeronExpertDispatcher.Context()
                .aeron(aeron)
                .placement(PlacementWatch.start(spec, config, registry))
                .replies(replyChannel, replyStreamId)
                .senderId(senderId)
                .model(config)
                .replyTimeout(layerTimeout())
                .attemptTimeout(replicaTimeout)
                .publicationDeadline(publicationDeadline())
                .idleStrategy(idleStrategy())
                .dataPlaneAuth(dataPlaneAuth());
    }
}
