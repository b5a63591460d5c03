package io.moecluster.router.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
        assertThat(p.host(1, 5).id()).isEqualTo("e1");
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
}
