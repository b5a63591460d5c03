package io.moecluster.cluster.multihost;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three-host cluster of {@link ThreeHostClusterTest} with Aeron's loss generator in every
 * media driver: 5% of the data frames each driver receives are dropped. Aeron's NAKs and
 * retransmits must recover every one, so the greedy tokens still equal one process's. The
 * drivers' counters show that loss happened and was repaired.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LossyNetworkClusterTest {
    static final double LOSS = 0.05;

    @TempDir
    static Path dir;

    private NamespaceHosts hosts;
    private MultiHostCluster cluster;

    @BeforeAll
    void start() throws Exception {
        String reason = NamespaceHosts.unavailableReason();
        Assumptions.assumeTrue(reason == null, () -> "multi-host tests skipped: " + reason);
        hosts = NamespaceHosts.create(3);
        cluster = MultiHostCluster.start(hosts, dir.resolve("cluster"), MultiHost.MODEL, LOSS);
    }

    @AfterAll
    void stop() {
        if (cluster != null) {
            cluster.close();
        }
        if (hosts != null) {
            hosts.close();
        }
    }

    @Test
    void fivePercentLossStillGivesTheGreedyTokensOfOneProcess() throws Exception {
        long naks = cluster.driverCounter("NAKs sent");
        long retransmits = cluster.driverCounter("Retransmits sent");
        long start = System.nanoTime();
        int rounds = 3;
        for (int r = 0; r < rounds; r++) {
            MultiHost.concurrentStreamsMatch(cluster.routerAddress());
        }
        long elapsed = System.nanoTime() - start;
        long nakDelta = cluster.driverCounter("NAKs sent") - naks;
        long retransmitDelta = cluster.driverCounter("Retransmits sent") - retransmits;
        String report = String.format(Locale.ROOT, "5%% receive loss on every driver: %d requests identical to one "
                + "process in %s; NAKs sent %d, retransmits sent %d", 4 * rounds, MultiHost.ms(elapsed), nakDelta,
                retransmitDelta);
        System.out.println(report);
        MultiHost.record("loss.txt", report);
        assertThat(nakDelta).as("the loss generator dropped frames that were asked for again").isPositive();
        assertThat(retransmitDelta).isPositive();
    }
}
