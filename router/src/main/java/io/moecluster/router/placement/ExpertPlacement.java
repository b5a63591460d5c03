package io.moecluster.router.placement;

import io.moecluster.core.forward.ExpertBank;
import io.moecluster.core.model.ModelConfig;

/**
 * Which expert service hosts expert {@code e} of layer {@code l}: the placement table the router
 * dispatches by. Built from the cluster file and checked against the model at startup, so a
 * missing expert is a startup error naming it, not a failed request later.
 */
public final class ExpertPlacement {
    private final ClusterSpec.Expert[][] hosts;

    private ExpertPlacement(ClusterSpec.Expert[][] hosts) {
        this.hosts = hosts;
    }

    public static ExpertPlacement build(ClusterSpec spec, ModelConfig config) {
        int slots = ExpertBank.sharedExpertId(config) + (config.hasSharedExpert() ? 1 : 0);
        ClusterSpec.Expert[][] hosts = new ClusterSpec.Expert[config.numLayers()][slots];
        for (ClusterSpec.Expert service : spec.experts()) {
            if (service.lastLayer() >= config.numLayers()) {
                throw new IllegalArgumentException("cluster file: expert service " + service.id() + " names layer "
                        + service.lastLayer() + " but the model has " + config.numLayers());
            }
            for (int e : service.experts()) {
                if (e < 0 || e >= slots) {
                    throw new IllegalArgumentException("cluster file: expert service " + service.id() + " names expert "
                            + e + "; the model has experts 0-" + (slots - 1)
                            + (config.hasSharedExpert() ? " (" + (slots - 1) + " is the shared expert)" : ""));
                }
                for (int l = service.firstLayer(); l <= service.lastLayer(); l++) {
                    if (hosts[l][e] == null) {
                        hosts[l][e] = service;
                    }
                }
            }
        }
        for (int l = 0; l < config.numLayers(); l++) {
            if (!config.isMoeLayer(l)) {
                continue;
            }
            for (int e = 0; e < slots; e++) {
                if (hosts[l][e] == null) {
                    throw new IllegalArgumentException("cluster file: no expert service hosts expert " + e
                            + " of layer " + l);
                }
            }
        }
        return new ExpertPlacement(hosts);
    }

    public ClusterSpec.Expert host(int layer, int expert) {
        return hosts[layer][expert];
    }
}
