package io.moecluster.dispatch.placement;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ServiceRegistry;

/**
 * Keeps an {@link ExpertPlacement} equal to what the registry says: the first set is checked
 * strictly (a service that does not fit the model is a startup error), later changes are applied
 * as they come, and a replica that joins takes traffic on the next layer dispatched.
 */
public final class PlacementWatch implements AutoCloseable {
    private final ExpertPlacement placement;
    private final ServiceRegistry.Watch watch;

    private PlacementWatch(ExpertPlacement placement, ServiceRegistry.Watch watch) {
        this.placement = placement;
        this.watch = watch;
    }

    /**
     * @param registry null: the cluster file's expert services, fixed for the life of the process
     */
    public static PlacementWatch start(ClusterSpec spec, ModelConfig config, ServiceRegistry registry) {
        if (registry == null) {
            return new PlacementWatch(ExpertPlacement.build(spec, config), () -> { });
        }
        ExpertPlacement placement = ExpertPlacement.empty(config, spec.channel());
        boolean[] first = {true};
        ServiceRegistry.Watch watch = registry.watchExperts(services -> {
            placement.update(services, first[0]);
            first[0] = false;
        });
        return new PlacementWatch(placement, watch);
    }

    public ExpertPlacement placement() {
        return placement;
    }

    @Override
    public void close() {
        watch.close();
    }
}
