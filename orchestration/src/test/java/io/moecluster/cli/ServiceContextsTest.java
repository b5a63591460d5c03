package io.moecluster.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.attention.AttentionNode;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.dispatch.AeronExpertDispatcher;
import io.moecluster.expert.ExpertNode;
import io.moecluster.router.RouterNode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The services' contexts: conclude() fills the defaults and refuses bad values naming the flag. */
class ServiceContextsTest {
    private final Path model = GoldenModels.dir(GoldenModels.MIXTRAL);
    private final ClusterSpec spec = new ClusterSpec("/dev/shm/unused", "aeron:ipc", false,
            new ClusterSpec.Router("router", "127.0.0.1", 1, 1000, 1001),
            List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", 2, 1100)),
            List.of(new ClusterSpec.Expert("expert-0", List.of(0, 1, 2, 3, 4, 5, 6, 7), 0, 1, 2000)));

    @Test
    void defaultsAreFilledIn() {
        RouterNode.Context router = new RouterNode.Context().cluster(spec).model(model).conclude();
        assertThat(router.tracing()).isNotNull();
        assertThat(router.publicationDeadline()).isEqualTo(Duration.ofSeconds(2));
        assertThat(router.replicaTimeout()).isEqualTo(AeronExpertDispatcher.DEFAULT_ATTEMPT_TIMEOUT);
        AttentionNode.Context attention = new AttentionNode.Context().cluster(spec).model(model).id("attention-0")
                .moeTimeout(Duration.ofMillis(500)).conclude();
        assertThat(attention.replicaTimeout()).as("never longer than the layer's own timeout")
                .isEqualTo(Duration.ofMillis(500));
        assertThat(new ExpertNode.Context().cluster(spec).model(model).id("expert-0").conclude().metricsPort()).isZero();
    }

    @Test
    void badValuesNameTheirFlag() {
        assertThatThrownBy(() -> new ExpertNode.Context().cluster(spec).model(model).id("expert-0").maxRows(0).conclude())
                .hasMessage("--max-rows must be >= 1, got 0");
        assertThatThrownBy(() -> new ExpertNode.Context().cluster(spec).model(model).id("expert-9").conclude())
                .hasMessageContaining("no expert service 'expert-9'");
        assertThatThrownBy(() -> new ExpertNode.Context().cluster(spec).id("expert-0").conclude())
                .hasMessageContaining("--model is required");
        assertThatThrownBy(() -> new ExpertNode.Context().cluster(spec).model(model).id("expert-0").device("tpu")
                .conclude()).hasMessageContaining("--device: unknown compute backend 'tpu'");
        assertThatThrownBy(() -> new AttentionNode.Context().cluster(spec).model(model).id("attention-0").maxRunning(0)
                .conclude()).hasMessage("--max-running must be >= 1, got 0");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).replicaTimeout(Duration.ZERO)
                .conclude()).hasMessage("--replica-timeout-ms must be >= 1, got 0");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).metricsPort(70000).conclude())
                .hasMessageContaining("--metrics-port must be in 0-65535");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).idleStrategy("nap").conclude())
                .hasMessageContaining("unknown idle strategy 'nap'");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).httpPort(-1).conclude())
                .hasMessage("--http-port must be >= 0, got -1");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).httpPort(70000).conclude())
                .hasMessageContaining("--http-port must be a port number");
        assertThatThrownBy(() -> new RouterNode.Context().cluster(spec).model(model).chatTemplate(model.resolve("none.jinja"))
                .conclude()).hasMessageContaining("--chat-template: ").hasMessageContaining("none.jinja is not a file");
    }

    @Test
    void theModelSizesTheDispatcher() {
        ModelConfig config = ModelConfig.load(model);
        assertThat(config.expertSlots()).isEqualTo(config.numExperts());
        assertThat(config.sharedExpertId()).isEqualTo(config.numExperts());
        ModelConfig qwen = ModelConfig.load(GoldenModels.dir(GoldenModels.QWEN2_MOE));
        assertThat(qwen.expertSlots()).as("the shared expert takes one slot").isEqualTo(qwen.numExperts() + 1);
    }
}
