package io.moecluster.dispatch;

import io.moecluster.core.moe.MoeBlock;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ExpertLoad;
import io.moecluster.proto.v1.ReplicaLoad;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;

/**
 * The expert side of the cluster status, as one MoE router sees it (the router-service's, or an
 * attention replica's in embedded-router mode): every replica in its placement
 * table (healthy while its publication has a subscriber and it is not in quarantine, tokens
 * outstanding, last failure), tokens per second per expert, and per expert of each replica. A
 * replica whose process is gone shows unhealthy once the media driver has dropped its
 * subscription (at once on a clean stop, within the driver's 5 s client liveness timeout after a
 * SIGKILL), also to a router that started after it died.
 */
public final class DispatchStatus {
    private final MoeBlock router;
    private final AeronExpertDispatcher dispatcher;
    private final TokenRates rates;

    public DispatchStatus(MoeBlock router, AeronExpertDispatcher dispatcher, TokenRates rates) {
        this.router = router;
        this.dispatcher = dispatcher;
        this.rates = rates;
    }

    /** Adds the expert services, the per-expert and per-replica load and the re-dispatches to {@code status}. */
    public void writeTo(ClusterStatus.Builder status) {
        long now = System.nanoTime();
        for (ExpertReplica r : dispatcher.placement().replicas()) {
            ServiceStatus.Builder s = ServiceStatus.newBuilder().setInstanceId(r.id())
                    .setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                    .setEndpoint(r.channel() + " stream " + r.streamId())
                    .setHealthy(dispatcher.live(r, now))
                    .addAllExperts(r.service().experts())
                    .setFirstLayer(r.service().firstLayer())
                    .setLastLayer(r.service().lastLayer())
                    .setOutstandingTokens(r.outstandingTokens());
            if (r.lastFailure() != null) {
                s.setLastFailure(r.lastFailure());
            }
            status.addServices(s);
            for (int e : r.service().experts()) {
                status.addReplicaLoad(ReplicaLoad.newBuilder().setInstanceId(r.id()).setExpert(e)
                        .setTokensRouted(r.tokensRouted(e)).setTokensPerSecond(rates.replica(r, e)));
            }
        }
        for (ExpertReplica r : dispatcher.placement().leaving()) {
            status.addServices(ServiceStatus.newBuilder().setInstanceId(r.id()).setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                    .setEndpoint(r.channel() + " stream " + r.streamId()).setHealthy(dispatcher.live(r, now))
                    .addAllExperts(r.service().experts()).setDraining(true).setOutstandingTokens(r.outstandingTokens()));
        }
        for (int e = 0; e < router.expertSlots(); e++) {
            status.addExpertLoad(ExpertLoad.newBuilder().setExpert(e).setTokensRouted(router.tokensRouted(e))
                    .setTokensPerSecond(rates.expert(e)));
        }
        status.setRedispatches(dispatcher.redispatches())
                .setLastRedispatchUnixMs(dispatcher.lastRedispatchEpochMillis());
    }
}
