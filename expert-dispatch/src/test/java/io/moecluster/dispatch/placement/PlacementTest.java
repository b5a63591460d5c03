package io.moecluster.dispatch.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.IdRanges;
import io.moecluster.discovery.StaticFileRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlacementTest {
    static ClusterSpec spec(List<ClusterSpec.Expert> experts) {
        return new ClusterSpec("/dev/shm/x", "aeron:ipc", false, new ClusterSpec.Router("router-0", "127.0.0.1", 1, 1000, 1001),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", 2, 1100)), experts);
    }

    @Test
    void parsesAndFormatsIdRanges() {
        assertThat(IdRanges.format(IdRanges.parse("0-3, 8,5", "--experts", 9))).isEqualTo("0-3,5,8");
        assertThatThrownBy(() -> IdRanges.parse("0-9", "--experts", 8)).hasMessageContaining("--experts: '0-9' is outside 0-7");
        assertThatThrownBy(() -> IdRanges.parse("a", "--layers", 8)).hasMessageContaining("--layers: 'a' is not an id");
        assertThatThrownBy(() -> IdRanges.parse("", "--experts", 8)).hasMessageContaining("empty");
    }

    @Test
    void everyExpertOfEveryLayerNeedsAHost(@TempDir Path dir) throws Exception {
        ModelConfig config = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        ClusterSpec full = spec(List.of(new ClusterSpec.Expert("e0", List.of(0, 1, 2, 3), 0, 1, 2000),
                new ClusterSpec.Expert("e1", List.of(4, 5, 6, 7), 0, 1, 2001)));
        ExpertPlacement p = ExpertPlacement.build(full, config);
        assertThat(p.replicas(1, 5)).extracting(ExpertReplica::id).containsExactly("e1");
        Path file = dir.resolve("cluster.json");
        full.write(file);
        assertThat(ClusterSpec.read(file)).isEqualTo(full);

        ClusterSpec partial = spec(List.of(new ClusterSpec.Expert("e0", List.of(0, 1, 2, 3), 0, 1, 2000),
                new ClusterSpec.Expert("e1", List.of(4, 5, 6, 7), 0, 0, 2001)));
        assertThatThrownBy(() -> ExpertPlacement.build(partial, config))
                .hasMessageContaining("no expert service hosts expert 4 of layer 1");
        ClusterSpec shared = spec(List.of(new ClusterSpec.Expert("e0", List.of(0, 8), 0, 1, 2000)));
        assertThatThrownBy(() -> ExpertPlacement.build(shared, config)).hasMessageContaining("names expert 8");
    }

    @Test
    void clusterFileErrorsNameTheProblem(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() -> spec(List.of(new ClusterSpec.Expert("e0", List.of(0), 0, 1, 1000))))
                .hasMessageContaining("streamId 1000 is used twice");
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"aeronDir\": \"x\"}");
        assertThatThrownBy(() -> ClusterSpec.read(bad)).hasMessageContaining("not a valid cluster file");
    }

    @Test
    void updatesAddAndRemoveReplicasAndKeepTheirCounters() {
        ModelConfig config = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        ClusterSpec.Expert e0 = new ClusterSpec.Expert("e0", List.of(0, 1, 2, 3), 0, 1, 2000);
        ClusterSpec.Expert e1 = new ClusterSpec.Expert("e1", List.of(4, 5, 6, 7), 0, 1, 2001);
        ExpertPlacement p = ExpertPlacement.build(spec(List.of(e0, e1)), config);
        ExpertReplica first = p.replicas(0, 3)[0];
        first.sent(3, 7);
        long v = p.version();

        ClusterSpec.Expert extra = new ClusterSpec.Expert("e3-r1", List.of(3), 0, 1, 2002);
        p.update(List.of(e0, e1, extra), false);
        assertThat(p.version()).isGreaterThan(v);
        assertThat(p.replicas(1, 3)).extracting(ExpertReplica::id).containsExactly("e0", "e3-r1");
        assertThat(p.replicas(1, 2)).extracting(ExpertReplica::id).containsExactly("e0");
        assertThat(p.replicas(0, 3)[0]).as("same definition, same replica").isSameAs(first);
        assertThat(first.outstandingTokens()).isEqualTo(7);

        // Removing the only host of experts 4-7 is applied (a registry says so) and reported.
        p.update(List.of(e0, extra), false);
        assertThat(p.replicas(0, 5)).isEmpty();
        assertThat(p.missing()).isEqualTo("no expert service hosts expert 4 of layer 0");
        // A service that does not fit the model is left out of an update, not fatal.
        p.update(List.of(e0, e1, new ClusterSpec.Expert("odd", List.of(3), 0, 9, 2003)), false);
        assertThat(p.replicas()).extracting(ExpertReplica::id).containsExactly("e0", "e1");
    }

    @Test
    void quarantineGrowsWithConsecutiveFailuresAndAnAnswerEndsIt() {
        ExpertReplica r = new ExpertReplica(new ClusterSpec.Expert("e0", List.of(0), 0, 1, 2000), "aeron:ipc", 8);
        long now = 1_000_000_000L;
        assertThat(r.quarantined(now)).isFalse();
        r.failed("disconnected", now);
        assertThat(r.quarantined(now + ExpertReplica.FIRST_QUARANTINE_NANOS - 1)).isTrue();
        assertThat(r.quarantined(now + ExpertReplica.FIRST_QUARANTINE_NANOS)).isFalse();
        r.failed("disconnected", now);
        assertThat(r.quarantined(now + ExpertReplica.FIRST_QUARANTINE_NANOS)).as("doubled").isTrue();
        for (int i = 0; i < 10; i++) {
            r.failed("disconnected", now);
        }
        assertThat(r.quarantined(now + ExpertReplica.MAX_QUARANTINE_NANOS)).as("capped").isFalse();
        assertThat(r.failures()).isEqualTo(12);
        assertThat(r.lastFailure()).isEqualTo("disconnected");
        r.answered();
        assertThat(r.quarantined(now)).isFalse();
    }

    @Test
    void theClusterFileRegistrySeesReplicasAddedAndRemoved(@TempDir Path dir) throws Exception {
        ClusterSpec.Expert e0 = new ClusterSpec.Expert("e0", List.of(0, 1, 2, 3), 0, 1, 2000);
        ClusterSpec.Expert e1 = new ClusterSpec.Expert("e1", List.of(4, 5, 6, 7), 0, 1, 2001);
        Path file = dir.resolve("cluster.json");
        spec(List.of(e0, e1)).write(file);
        BlockingQueue<List<ClusterSpec.Expert>> seen = new LinkedBlockingQueue<>();
        try (StaticFileRegistry registry =
                     new StaticFileRegistry(file, 10);
             var watch = registry.watchExperts(seen::add)) {
            assertThat(seen.poll()).containsExactly(e0, e1);
            ClusterSpec.Expert extra = new ClusterSpec.Expert("e5-r1", List.of(5), 0, 1, 2002);
            Thread.sleep(20); // a different modification time than the first write
            spec(List.of(e0, e1, extra)).write(file);
            assertThat(seen.poll(5, TimeUnit.SECONDS)).containsExactly(e0, e1, extra);
            Files.writeString(file, "{ not json");
            Thread.sleep(100);
            assertThat(seen).as("a broken file keeps the last set").isEmpty();
            spec(List.of(e0, extra)).write(file);
            assertThat(seen.poll(5, TimeUnit.SECONDS)).containsExactly(e0, extra);
        }
    }
}
