package io.moecluster.service;

import io.moecluster.transport.DataPlaneAuth;
import io.opentelemetry.api.metrics.Meter;

/** The data-plane authentication metric every service has. */
public final class DataPlaneMetrics {
    private DataPlaneMetrics() {
    }

    /**
     * {@code moe_dataplane_unauthenticated_dropped_total}: messages this service dropped because
     * their authTag did not verify (also counted in {@code moe_dataplane_malformed_dropped_total}).
     */
    public static void register(Meter meter, DataPlaneAuth auth) {
        meter.counterBuilder("moe.dataplane.unauthenticated_dropped")
                .setDescription("Data-plane messages dropped because their authTag did not verify with the cluster secret")
                .buildWithCallback(m -> m.record(auth.rejected()));
    }
}
