package io.moecluster.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.cli.cluster.ClusterState;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moe up} really starts separate processes, serves, reports status, and {@code moe down} stops them all. */
class LocalClusterProcessTest {
    @TempDir
    Path dir;

    @AfterEach
    void downEvenIfTheTestFailed() {
        MoeCommandTest.moe("down", "--state-dir", dir.resolve("state").toString(), "--grace-s", "5");
    }

    @Test
    void upServesStatusAndDownStopsEveryProcess() throws Exception {
        Path model = dir.resolve("model");
        String state = dir.resolve("state").toString();
        assertThat(MoeCommandTest.moe("model", "make-random", "--arch", "qwen2_moe", "--preset", "tiny", "--dtype", "f32",
                "--seed", "9", model.toString()).exit()).isZero();

        MoeCommandTest.Run up = MoeCommandTest.moe("up", "--model", model.toString(), "--threads", "1",
                "--experts-per-service", "4", "--max-batch-tokens", "32", "--state-dir", state,
                "--no-embedded-router");
        assertThat(up.exit()).as(up.err()).isZero();
        assertThat(up.out()).contains("cluster up").contains("expert-2   experts 8")
                .containsPattern("OpenAI-compatible API on http://127\\.0\\.0\\.1:\\d+/v1");
        Map<String, Long> pids = new ClusterState(Path.of(state)).pids();
        assertThat(pids).containsKeys("media-driver", "expert-0", "expert-1", "expert-2", "attention-0", "router");
        for (long pid : pids.values()) {
            assertThat(ProcessHandle.of(pid)).as("pid %d", pid).isPresent();
            assertThat(pid).isNotEqualTo(ProcessHandle.current().pid());
        }

        MoeCommandTest.Run gen = MoeCommandTest.moe("generate", "--server",
                ServerAddress.local(new ClusterState(Path.of(state))), "--prompt", "Hi", "--max-tokens", "6", "--ignore-eos");
        assertThat(gen.exit()).as(gen.err()).isZero();
        assertThat(gen.err()).contains("6 completion tokens");

        // The HTTP API of the local cluster: moe chat finds it through the state directory.
        MoeCommandTest.Run chat = MoeCommandTest.moe("chat", "--state-dir", state, "--message", "Hi", "--max-tokens", "4",
                "--ignore-eos");
        assertThat(chat.exit()).as(chat.err()).isZero();
        assertThat(chat.out()).endsWith(System.lineSeparator());

        MoeCommandTest.Run status = MoeCommandTest.moe("status", "--state-dir", state);
        assertThat(status.exit()).as(status.err()).isZero();
        assertThat(status.out()).contains("expert-0").contains("attention").contains("TOKENS ROUTED");

        MoeCommandTest.Run down = MoeCommandTest.moe("down", "--state-dir", state);
        assertThat(down.exit()).as(down.err()).isZero();
        for (long pid : pids.values()) {
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).as("pid %d after down", pid).isFalse();
        }
        assertThat(MoeCommandTest.moe("down", "--state-dir", state).err()).contains("no local cluster running");
    }
}
