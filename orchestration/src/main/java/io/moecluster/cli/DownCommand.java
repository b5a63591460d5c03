package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalClusterStopper;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "down", mixinStandardHelpOptions = true,
        description = "Stops the local cluster 'moe up' started: SIGTERM in reverse start order, SIGKILL after the grace period.")
final class DownCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    StateDirFlag stateDir;

    @Option(names = "--grace-s", defaultValue = "15", paramLabel = "S", description = "Seconds each service gets to stop (default: ${DEFAULT-VALUE}).")
    int graceSeconds;

    @Override
    public Integer call() throws Exception {
        ClusterState state = stateDir.state();
        Map<String, Long> pids = state.pids();
        if (pids.isEmpty()) {
            throw new IllegalArgumentException("no local cluster running from " + state.dir());
        }
        List<String> killed = LocalClusterStopper.stop(state, pids, Duration.ofSeconds(graceSeconds));
        spec.commandLine().getOut().println("cluster down (" + pids.size() + " processes"
                + (killed.isEmpty() ? "" : "; killed after the grace period: " + String.join(", ", killed)) + ")");
        return 0;
    }
}
