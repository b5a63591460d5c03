package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionNode;
import io.moecluster.consul.ConsulOptions;
import io.moecluster.consul.ConsulRegistry;
import io.moecluster.consul.FakeConsul;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ExpertMetadata;
import io.moecluster.discovery.ServiceInstance;
import io.moecluster.discovery.ServiceRegistry;
import io.moecluster.discovery.ServiceRole;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ServiceStatus;
import io.moecluster.router.RouterNode;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The cluster with Consul as its registry (the loopback fake of the Consul HTTP API): expert
 * services register themselves, the router finds them by watching Consul, a replica that
 * registers later takes traffic without a restart, and one that deregisters stops getting any,
 * with every answer equal to the single-process engine's.
 */
class ConsulDiscoveryClusterTest {
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stopEverything() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
    }

    static ConsulOptions options(FakeConsul consul) {
        return ConsulOptions.at(consul.address()).withTtl(Duration.ofSeconds(2))
                .withDeregisterCriticalAfter(Duration.ofSeconds(5)).withWatchWait(Duration.ofSeconds(2))
                .withRetry(Duration.ofMillis(50), Duration.ofMillis(200)).withRequestTimeout(Duration.ofSeconds(3));
    }

    /** Starts one expert service the cluster file does not list and registers it, as a pod would. */
    ServiceRegistry.Registration expert(ClusterSpec base, ClusterSpec.Expert self, Path model, FakeConsul consul) {
        ClusterSpec own = new ClusterSpec(base.aeronDir(), base.channel(), base.embeddedRouter(), base.router(),
                base.attention(), List.of(self));
        ExpertNode node = ExpertNode.launch(ClusterEndToEndTest.expert(own, self.id(), model));
        ConsulRegistry registry = new ConsulRegistry(options(consul));
        ServiceRegistry.Registration registration = registry.register(new ServiceInstance(self.id(), ServiceRole.EXPERT,
                "127.0.0.1", 0, ExpertMetadata.of(self, "aeron:ipc")));
        open.add(node);
        open.add(registry);
        return registration;
    }

    @Test
    void routerFindsExpertServicesInConsulAndFollowsThemJoiningAndLeaving() throws Exception {
        FakeConsul consul = new FakeConsul();
        open.add(consul);
        Path model = GoldenModels.dir(GoldenModels.MIXTRAL);
        int last = ModelConfig.load(model).numLayers() - 1;
        EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        ClusterSpec base = new ClusterSpec(driver.aeronDirectoryName(), "aeron:ipc", false,
                new ClusterSpec.Router("router-0", "127.0.0.1", ClusterEndToEndTest.freePort(), 1000, 1001),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", ClusterEndToEndTest.freePort(), 1100)),
                List.of());
        expert(base, new ClusterSpec.Expert("expert-0", List.of(0, 1, 2, 3), 0, last, 2000), model, consul);
        ServiceRegistry.Registration high =
                expert(base, new ClusterSpec.Expert("expert-1", List.of(4, 5, 6, 7), 0, last, 2001), model, consul);

        ConsulRegistry routerRegistry = new ConsulRegistry(options(consul));
        open.add(routerRegistry);
        open.add(AttentionNode.launch(ClusterEndToEndTest.attention(base, model)));
        RouterNode router = RouterNode.launch(ClusterEndToEndTest.router(base, model).expertTimeout(Duration.ofSeconds(10))
                .registry(routerRegistry));
        open.add(router);
        ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
        open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        ClusterEndToEndTest.Cluster c = new ClusterEndToEndTest.Cluster(base, model, router, channel);

        int[] p = ClusterEndToEndTest.prompt(9, 4);
        Integer[] expected = IntStream.of(ClusterEndToEndTest.singleProcessGreedy(model, p)).boxed().toArray(Integer[]::new);
        assertThat(c.inference().generate(ClusterEndToEndTest.request(p)).getTokenIdsList()).containsExactly(expected);

        // A replica of experts 4-7 registers: the router's Consul watch adds it, no restart.
        expert(base, new ClusterSpec.Expert("expert-1b", List.of(4, 5, 6, 7), 0, last, 2002), model, consul);
        awaitExpertServices(channel, List.of("expert-0", "expert-1", "expert-1b"));
        for (int i = 0; i < 3; i++) {
            assertThat(c.inference().generate(ClusterEndToEndTest.request(p)).getTokenIdsList()).containsExactly(expected);
        }
        assertThat(ExpertReplicasTest.tokensRoutedTo(status(channel), "expert-1b")).isPositive();

        // expert-1 deregisters (a drained pod): the router drops it; requests go on.
        high.close();
        awaitExpertServices(channel, List.of("expert-0", "expert-1b"));
        assertThat(c.inference().generate(ClusterEndToEndTest.request(p)).getTokenIdsList()).containsExactly(expected);
        assertThat(status(channel).getReplicaLoadList()).noneMatch(l -> l.getInstanceId().equals("expert-1"));
    }

    static ClusterStatus status(ManagedChannel channel) {
        return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
    }

    static void awaitExpertServices(ManagedChannel channel, List<String> ids) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        List<String> seen = List.of();
        while (System.nanoTime() < deadline) {
            seen = status(channel).getServicesList().stream()
                    .filter(s -> s.getRole() == io.moecluster.proto.v1.ServiceRole.SERVICE_ROLE_EXPERT)
                    .map(ServiceStatus::getInstanceId).toList();
            if (seen.equals(ids)) {
                return;
            }
            Thread.sleep(20);
        }
        assertThat(seen).as("expert services the router lists").isEqualTo(ids);
    }
}
