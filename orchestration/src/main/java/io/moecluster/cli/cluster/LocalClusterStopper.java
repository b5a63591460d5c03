package io.moecluster.cli.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** Stops a local cluster's processes: SIGTERM in reverse start order, SIGKILL for any that outlive the grace period. */
public final class LocalClusterStopper {
    private LocalClusterStopper() {
    }

    /**
     * The supervisor goes first, whatever its place in the start order (replicas {@code moe scale}
     * added come after it), so that nothing stopped here is started again.
     *
     * @return the ids that had to be killed
     */
    public static List<String> stop(ClusterState state, Map<String, Long> pids, Duration grace) throws IOException {
        List<String> ids = new ArrayList<>(pids.keySet());
        if (ids.remove(LocalSupervisor.ID)) {
            ids.add(LocalSupervisor.ID);
        }
        List<String> killed = new ArrayList<>();
        for (int i = ids.size() - 1; i >= 0; i--) {
            String id = ids.get(i);
            Optional<ProcessHandle> p = ProcessHandle.of(pids.get(id));
            if (p.isEmpty() || !p.get().isAlive()) {
                continue;
            }
            p.get().destroy();
            try {
                p.get().onExit().get(grace.toMillis(), TimeUnit.MILLISECONDS);
            } catch (Exception timedOut) {
                p.get().destroyForcibly();
                killed.add(id);
            }
        }
        Files.deleteIfExists(state.pidsFile());
        LocalClusterLauncher.deleteTree(state.dir().resolve("ready"));
        if (Files.isRegularFile(state.clusterFile())) {
            Path aeronDir = Path.of(state.spec().aeronDir());
            LocalClusterLauncher.deleteTree(aeronDir); // the driver removes it on a clean stop; not after a kill
        }
        return killed;
    }
}
