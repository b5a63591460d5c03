package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Where the local cluster's state lives; shared by up, down, status and generate. */
final class StateDirFlag {
    @Option(names = "--state-dir", defaultValue = "${env:MOE_STATE_DIR:-.moe}", paramLabel = "DIR",
            description = "Local cluster state (default: $MOE_STATE_DIR or .moe).")
    Path dir;

    ClusterState state() {
        return new ClusterState(dir);
    }
}
