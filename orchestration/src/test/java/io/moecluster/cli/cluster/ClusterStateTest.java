package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The local cluster's state (issue 13, defect 6): earlier runs' logs are kept; heaps per role. */
class ClusterStateTest {
    @TempDir
    Path dir;

    @Test
    void rotatingKeepsThePreviousRunsLogsUpToFive() throws Exception {
        ClusterState state = new ClusterState(dir);
        Files.createDirectories(state.log("router").getParent());
        for (int run = 1; run <= 7; run++) {
            state.rotateLogs();
            Files.writeString(state.log("router"), "run " + run);
        }
        Path logs = state.log("router").getParent();
        assertThat(Files.readString(state.log("router"))).isEqualTo("run 7");
        for (int i = 1; i <= ClusterState.KEPT_LOGS; i++) {
            assertThat(Files.readString(logs.resolve("router.log." + i))).isEqualTo("run " + (7 - i));
        }
        assertThat(logs.resolve("router.log." + (ClusterState.KEPT_LOGS + 1))).doesNotExist();
    }

    @Test
    void heapsPerRoleAreKeptAndCheckedByName() throws Exception {
        ClusterState state = new ClusterState(dir);
        var o = new LocalClusterLauncher.Options(dir.resolve("model"), 4, false, 0, 1, 32, Duration.ofSeconds(60), -1,
                null, Map.of("router", "2g"), false);
        assertThat(o.heap("router")).isEqualTo("2g");
        assertThat(o.heap("expert")).isEqualTo(LocalClusterLauncher.DEFAULT_HEAPS.get("expert"));
        state.writeLaunchOptions(o);
        assertThat(state.launchOptions()).isEqualTo(o);
        assertThatThrownBy(() -> new LocalClusterLauncher.Options(dir, 4, false, 0, 1, 32, Duration.ofSeconds(60), -1,
                null, Map.of("routr", "2g"), true)).hasMessageContaining("--heap").hasMessageContaining("routr");
        assertThatThrownBy(() -> new LocalClusterLauncher.Options(dir, 4, false, 0, 1, 32, Duration.ofSeconds(60), -1,
                null, Map.of("router", "lots"), true)).hasMessageContaining("--heap").hasMessageContaining("lots");
    }
}
