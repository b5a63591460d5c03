package io.moecluster.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import io.moecluster.discovery.ClusterSpec;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ExpertLoad;
import io.moecluster.proto.v1.ReplicaLoad;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.ServiceStatus;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Summing the attention replicas' embedded routers into one cluster status. */
class EmbeddedRouterStatusTest {
    private static final ClusterSpec SPEC = new ClusterSpec("/dev/shm/x", "aeron:ipc", true,
            new ClusterSpec.Router("router", "127.0.0.1", 1, 10, 11),
            List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", 2, 20)),
            List.of(new ClusterSpec.Expert("expert-0", List.of(0, 1), 0, 3, 30)));

    private static ServiceStatus expert(String id, boolean healthy, boolean draining, long outstanding, String failure) {
        return ServiceStatus.newBuilder().setInstanceId(id).setRole(ServiceRole.SERVICE_ROLE_EXPERT)
                .setHealthy(healthy).setDraining(draining).setOutstandingTokens(outstanding).setLastFailure(failure)
                .addExperts(0).build();
    }

    private static AttentionStatus replica(ClusterStatus view) {
        return AttentionStatus.newBuilder().setInstanceId("a").setEmbeddedRouter(view).build();
    }

    @Test
    void loadsAddUpAndAServiceIsHealthyOnlyIfEveryRouterSeesItSo() {
        ClusterStatus a = ClusterStatus.newBuilder()
                .addServices(expert("expert-0", true, false, 3, ""))
                .addServices(expert("expert-1", true, true, 1, ""))
                .addExpertLoad(ExpertLoad.newBuilder().setExpert(0).setTokensRouted(100).setTokensPerSecond(10))
                .addExpertLoad(ExpertLoad.newBuilder().setExpert(1).setTokensRouted(50).setTokensPerSecond(5))
                .addReplicaLoad(ReplicaLoad.newBuilder().setInstanceId("expert-0").setExpert(0).setTokensRouted(100)
                        .setTokensPerSecond(10))
                .setRedispatches(2).setLastRedispatchUnixMs(1000).build();
        ClusterStatus b = ClusterStatus.newBuilder()
                .addServices(expert("expert-0", false, false, 4, "timed out"))
                .addServices(expert("expert-1", true, false, 0, ""))
                .addExpertLoad(ExpertLoad.newBuilder().setExpert(0).setTokensRouted(7).setTokensPerSecond(1.5))
                .addReplicaLoad(ReplicaLoad.newBuilder().setInstanceId("expert-0").setExpert(0).setTokensRouted(7)
                        .setTokensPerSecond(1.5))
                .addReplicaLoad(ReplicaLoad.newBuilder().setInstanceId("expert-1").setExpert(0).setTokensRouted(1))
                .setRedispatches(1).setLastRedispatchUnixMs(3000).build();
        ClusterStatus.Builder status = ClusterStatus.newBuilder();

        new EmbeddedRouterStatus(SPEC).contribute(status,
                List.of(replica(a), AttentionStatus.newBuilder().setInstanceId("no router").build(), replica(b)));

        assertThat(status.getServicesList()).hasSize(2);
        ServiceStatus e0 = status.getServices(0);
        assertThat(e0.getInstanceId()).isEqualTo("expert-0");
        assertThat(e0.getHealthy()).isFalse();
        assertThat(e0.getOutstandingTokens()).isEqualTo(7);
        assertThat(e0.getLastFailure()).isEqualTo("timed out");
        ServiceStatus e1 = status.getServices(1);
        assertThat(e1.getHealthy()).isTrue();
        assertThat(e1.getDraining()).as("one router still routes to it").isFalse();
        assertThat(status.getExpertLoadList()).extracting(ExpertLoad::getExpert, ExpertLoad::getTokensRouted,
                ExpertLoad::getTokensPerSecond).containsExactly(
                tuple(0, 107L, 11.5), tuple(1, 50L, 5.0));
        assertThat(status.getReplicaLoadList()).extracting(ReplicaLoad::getInstanceId, ReplicaLoad::getTokensRouted)
                .containsExactly(tuple("expert-0", 107L),
                        tuple("expert-1", 1L));
        assertThat(status.getRedispatches()).isEqualTo(3);
        assertThat(status.getLastRedispatchUnixMs()).isEqualTo(3000);
    }

    @Test
    void aServiceOnlySomeRoutersHavePickedUpIsNotHealthyYet() {
        ClusterStatus a = ClusterStatus.newBuilder().addServices(expert("expert-0", true, false, 0, ""))
                .addServices(expert("expert-0-r1", true, false, 0, "")).build();
        ClusterStatus b = ClusterStatus.newBuilder().addServices(expert("expert-0", true, false, 0, "")).build();
        ClusterStatus.Builder status = ClusterStatus.newBuilder();

        new EmbeddedRouterStatus(SPEC).contribute(status, List.of(replica(a), replica(b)));

        assertThat(status.getServices(0).getHealthy()).isTrue();
        ServiceStatus added = status.getServices(1);
        assertThat(added.getInstanceId()).isEqualTo("expert-0-r1");
        assertThat(added.getHealthy()).isFalse();
        assertThat(added.getLastFailure()).isEqualTo("in the placement of 1 of 2 attention replicas' routers");
    }

    @Test
    void withNoRouterAnsweringTheClusterFilesExpertServicesAreListed() {
        ClusterStatus.Builder status = ClusterStatus.newBuilder();

        new EmbeddedRouterStatus(SPEC).contribute(status, List.of());

        assertThat(status.getServicesList()).extracting(ServiceStatus::getInstanceId).containsExactly("expert-0");
        assertThat(status.getServices(0).getExpertsList()).containsExactly(0, 1);
        assertThat(status.getExpertLoadList()).isEmpty();
    }
}
