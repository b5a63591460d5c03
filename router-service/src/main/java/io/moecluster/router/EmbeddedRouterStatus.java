package io.moecluster.router;

import io.moecluster.discovery.ClusterSpec;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ExpertLoad;
import io.moecluster.proto.v1.ReplicaLoad;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The expert side of the cluster status in embedded-router mode, where each attention replica
 * routes its own tokens and the router-service sees no expert traffic: the sum of what the
 * replicas' routers report in their Status. Token counts and rates add up (each token is routed
 * by exactly one replica). An expert service counts healthy only if every router lists it and
 * sees it healthy (one that some routers have not picked up from the cluster file yet is not
 * reachable from every replica), and draining only if none still routes to it. With no replica
 * answering, the expert services are listed from the cluster file, with no load.
 */
final class EmbeddedRouterStatus implements ClusterStatusContributor {
    private final ClusterSpec spec;

    EmbeddedRouterStatus(ClusterSpec spec) {
        this.spec = spec;
    }

    @Override
    public void contribute(ClusterStatus.Builder status, List<AttentionStatus> attention) {
        List<ClusterStatus> views = attention.stream().filter(AttentionStatus::hasEmbeddedRouter)
                .map(AttentionStatus::getEmbeddedRouter).toList();
        if (views.isEmpty()) {
            listed(status);
            return;
        }
        merge(views, status);
    }

    /** Sums the routers' views into {@code status}: services by instance id, loads by expert and by (replica, expert). */
    static void merge(List<ClusterStatus> views, ClusterStatus.Builder status) {
        Map<String, ServiceStatus.Builder> services = new LinkedHashMap<>();
        Map<String, Integer> listedBy = new LinkedHashMap<>();
        Map<Integer, ExpertLoad.Builder> experts = new TreeMap<>();
        Map<String, ReplicaLoad.Builder> replicas = new LinkedHashMap<>();
        long redispatches = 0;
        long lastRedispatch = 0;
        for (ClusterStatus view : views) {
            for (ServiceStatus s : view.getServicesList()) {
                listedBy.merge(s.getInstanceId(), 1, Integer::sum);
                ServiceStatus.Builder m = services.get(s.getInstanceId());
                if (m == null) {
                    services.put(s.getInstanceId(), s.toBuilder());
                    continue;
                }
                m.setHealthy(m.getHealthy() && s.getHealthy())
                        .setDraining(m.getDraining() && s.getDraining())
                        .setOutstandingTokens(m.getOutstandingTokens() + s.getOutstandingTokens())
                        .setOutstandingBatches(m.getOutstandingBatches() + s.getOutstandingBatches());
                if (m.getLastFailure().isEmpty() && !s.getLastFailure().isEmpty()) {
                    m.setLastFailure(s.getLastFailure());
                }
            }
            for (ExpertLoad e : view.getExpertLoadList()) {
                ExpertLoad.Builder m = experts.computeIfAbsent(e.getExpert(), k -> ExpertLoad.newBuilder().setExpert(k));
                m.setTokensRouted(m.getTokensRouted() + e.getTokensRouted())
                        .setTokensPerSecond(m.getTokensPerSecond() + e.getTokensPerSecond());
            }
            for (ReplicaLoad r : view.getReplicaLoadList()) {
                ReplicaLoad.Builder m = replicas.computeIfAbsent(r.getInstanceId() + "\u0000" + r.getExpert(),
                        k -> ReplicaLoad.newBuilder().setInstanceId(r.getInstanceId()).setExpert(r.getExpert()));
                m.setTokensRouted(m.getTokensRouted() + r.getTokensRouted())
                        .setTokensPerSecond(m.getTokensPerSecond() + r.getTokensPerSecond());
            }
            redispatches += view.getRedispatches();
            lastRedispatch = Math.max(lastRedispatch, view.getLastRedispatchUnixMs());
        }
        for (ServiceStatus.Builder m : services.values()) {
            int listing = listedBy.getOrDefault(m.getInstanceId(), 0);
            if (!m.getDraining() && listing < views.size()) {
                m.setHealthy(false);
                if (m.getLastFailure().isEmpty()) {
                    m.setLastFailure("in the placement of " + listing + " of " + views.size()
                            + " attention replicas' routers");
                }
            }
            status.addServices(m);
        }
        experts.values().forEach(status::addExpertLoad);
        replicas.values().forEach(status::addReplicaLoad);
        status.setRedispatches(status.getRedispatches() + redispatches)
                .setLastRedispatchUnixMs(Math.max(status.getLastRedispatchUnixMs(), lastRedispatch));
    }

    /** No router answered: the cluster file's expert services, as listed. */
    private void listed(ClusterStatus.Builder status) {
        for (ClusterSpec.Expert e : spec.experts()) {
            status.addServices(ServiceStatus.newBuilder().setInstanceId(e.id())
                    .setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                    .setEndpoint(spec.channelOf(e) + " stream " + e.streamId()).setHealthy(true)
                    .addAllExperts(e.experts()).setFirstLayer(e.firstLayer()).setLastLayer(e.lastLayer()));
        }
    }
}
