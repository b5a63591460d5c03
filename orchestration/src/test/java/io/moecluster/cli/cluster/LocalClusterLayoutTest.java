package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How {@code moe up} lays out the expert services of one host. */
class LocalClusterLayoutTest {
    @TempDir
    Path dir;

    private ClusterSpec layout(String model, int expertsPerService) throws Exception {
        Path modelDir = GoldenModels.dir(model);
        var o = new LocalClusterLauncher.Options(modelDir, expertsPerService, false, 0, 1, 32, Duration.ofSeconds(60));
        return LocalClusterLauncher.layout(ModelConfig.load(modelDir), o, dir.resolve("aeron"));
    }

    @Test
    void byDefaultOneExpertServiceHostsEveryExpertAndTheSharedOne() throws Exception {
        ModelConfig qwen = ModelConfig.load(GoldenModels.dir(GoldenModels.QWEN2_MOE));
        ClusterSpec spec = layout(GoldenModels.QWEN2_MOE, 0);
        assertThat(spec.experts()).hasSize(1);
        ClusterSpec.Expert only = spec.experts().getFirst();
        assertThat(only.id()).isEqualTo("expert-0");
        assertThat(only.experts()).isEqualTo(IntStream.range(0, qwen.expertSlots()).boxed().toList());
        assertThat(only.firstLayer()).isZero();
        assertThat(only.lastLayer()).isEqualTo(qwen.numLayers() - 1);
    }

    @Test
    void groupsOfNExpertsGoToServicesInOrder() throws Exception {
        ModelConfig mixtral = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
        ClusterSpec spec = layout(GoldenModels.MIXTRAL, 3);
        int slots = mixtral.expertSlots();
        assertThat(spec.experts()).hasSize((slots + 2) / 3);
        assertThat(spec.experts().getFirst().experts()).isEqualTo(List.of(0, 1, 2));
        assertThat(spec.experts().getLast().experts().getLast()).isEqualTo(slots - 1);
        assertThat(spec.experts().stream().map(ClusterSpec.Expert::streamId).distinct()).hasSize(spec.experts().size());
    }

    @Test
    void aNegativeCountIsRefusedNamingTheFlag() {
        assertThatThrownBy(() -> layout(GoldenModels.MIXTRAL, -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--experts-per-service must be >= 0");
    }
}
