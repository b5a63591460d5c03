package io.moecluster.router;

import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.v1.ClusterStatus;
import java.util.List;

/**
 * Adds a part of the cluster to {@code GetClusterStatus}. The MoE router registers one to list its
 * expert services ({@code ServiceStatus} with role EXPERT) and the per-expert token counts
 * ({@code ExpertLoad}); in embedded-router mode that part comes from the attention replicas'
 * answers. Called on a gRPC thread per status request; must not block for long.
 */
@FunctionalInterface
public interface ClusterStatusContributor {
    /**
     * @param attention the Status of every attention replica that answered this request (those that
     *     did not are listed unhealthy already)
     */
    void contribute(ClusterStatus.Builder status, List<AttentionStatus> attention);
}
