package io.moecluster.router;

import io.moecluster.proto.v1.ClusterStatus;

/**
 * Adds a part of the cluster to {@code GetClusterStatus}. The MoE router registers one to list its
 * expert services ({@code ServiceStatus} with role EXPERT) and the per-expert token counts
 * ({@code ExpertLoad}). Called on a gRPC thread per status request; must not block for long.
 */
@FunctionalInterface
public interface ClusterStatusContributor {
    void contribute(ClusterStatus.Builder status);
}
