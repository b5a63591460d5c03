package io.moecluster.cli.cluster;

import io.moecluster.discovery.ClusterSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The supervisor of a local cluster ({@code moe supervise}, which {@code moe up} starts last and
 * {@code moe down} stops first), doing for {@code moe up} what Kubernetes does for pods: a service
 * process that exits, whatever the reason (a crash, a kill, or a service that exits by itself
 * because its Aeron client died, status 75), is started again with the same command line, its
 * output appended to the same log after a line saying so. Restarts back off: 1 s after the first
 * exit, doubling per exit in a row up to 30 s; a service that then runs for 60 s starts again from
 * 1 s. Expert services that are no longer in the cluster file ({@code moe drain}, scaling down)
 * are not restarted. It polls every 250 ms and reports what it does in {@code supervisor.json},
 * which {@code moe status} prints.
 *
 * <p>A service started by {@code moe up} is not this process's child, so its exit status is not
 * known here; a service that exits on purpose leaves a line saying why
 * ({@link ClusterState#writeExitReason}), which the report shows. Restarted ones are its children.
 */
public final class LocalSupervisor {
    /** The supervisor's id in the pid file (and its log's name). */
    public static final String ID = "supervisor";
    static final Duration POLL = Duration.ofMillis(250);
    static final Duration FIRST_BACKOFF = Duration.ofSeconds(1);
    static final Duration MAX_BACKOFF = Duration.ofSeconds(30);
    static final Duration STABLE_AFTER = Duration.ofSeconds(60);
    private static final Logger LOG = LoggerFactory.getLogger(LocalSupervisor.class);

    private final ClusterState state;
    private final Map<String, Tracked> tracked = new LinkedHashMap<>();
    private volatile boolean stopping;
    private String lastReport = "";

    /** One service as the supervisor follows it. */
    static final class Tracked {
        long pid;
        Process child;
        int restarts;
        int inARow;
        long startedNanos = System.nanoTime();
        long restartAtNanos;
        String lastExit;
        String lastExitAt;
        String lastRestartAt;
        String state = "running";
    }

    public LocalSupervisor(ClusterState state) {
        this.state = state;
    }

    /** Supervises until {@link #stop()} or until the cluster's pid file is gone ({@code moe down} ran). */
    public void run() throws InterruptedException {
        LOG.info("supervising the local cluster in {} (pid {})", state.dir(), ProcessHandle.current().pid());
        while (!stopping) {
            try {
                if (!Files.isRegularFile(state.pidsFile())) {
                    LOG.info("the cluster's pid file is gone; stopping");
                    break;
                }
                tick(System.nanoTime());
                report("supervising");
            } catch (IOException | RuntimeException e) {
                LOG.warn("supervisor: {}", e.toString());
            }
            Thread.sleep(POLL.toMillis());
        }
        try {
            report("stopped");
        } catch (IOException e) {
            LOG.warn("supervisor: {}", e.toString());
        }
    }

    /** Stops supervising after the current poll: nothing is restarted from now on. */
    public void stop() {
        stopping = true;
    }

    void tick(long now) throws IOException {
        Map<String, Long> pids = state.pids();
        Map<String, List<String>> commands = state.commands();
        ClusterSpec spec = Files.isRegularFile(state.clusterFile()) ? state.spec() : null;
        tracked.keySet().retainAll(pids.keySet());
        for (Map.Entry<String, Long> e : pids.entrySet()) {
            String id = e.getKey();
            if (id.equals(ID)) {
                continue;
            }
            Tracked t = tracked.computeIfAbsent(id, k -> new Tracked());
            if (t.pid != e.getValue()) { // first sight, or someone else (moe scale) started it anew
                t.pid = e.getValue();
                t.child = null;
                t.restartAtNanos = 0;
                t.startedNanos = now;
            }
            boolean alive = t.child != null ? t.child.isAlive() : ProcessHandle.of(t.pid).map(ProcessHandle::isAlive)
                    .orElse(false);
            if (alive) {
                t.state = "running";
                if (t.inARow > 0 && now - t.startedNanos > STABLE_AFTER.toNanos()) {
                    t.inARow = 0;
                }
                continue;
            }
            List<String> command = commands.get(id);
            if (command == null) {
                t.state = "exited (not restarted: no command recorded)";
                continue;
            }
            if (isExpertService(command) && spec != null && spec.experts().stream().noneMatch(x -> x.id().equals(id))) {
                t.state = "stopped (not in the cluster file: drained)";
                continue;
            }
            if (t.restartAtNanos == 0) {
                t.lastExit = exitOf(id, t);
                t.lastExitAt = Instant.now().toString();
                long backoff = Math.min(MAX_BACKOFF.toNanos(), FIRST_BACKOFF.toNanos() << Math.min(t.inARow, 10));
                t.restartAtNanos = now + backoff;
                t.state = "exited; restarting " + t.lastExitAt + " + " + backoff / 1_000_000 + " ms";
                LOG.warn("{} (pid {}) {}; restarting it in {} ms", id, t.pid, t.lastExit, backoff / 1_000_000);
            } else if (now - t.restartAtNanos >= 0) {
                restart(id, t, command, now);
            }
        }
    }

    private void restart(String id, Tracked t, List<String> command, long now) throws IOException {
        long oldPid = t.pid;
        Path log = state.log(id);
        Files.createDirectories(log.getParent());
        Files.writeString(log, System.lineSeparator() + "=== moe up supervisor: restarting " + id + " at " + Instant.now()
                + " (restart " + (t.restarts + 1) + "; it " + t.lastExit + ") ===" + System.lineSeparator(),
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        Files.deleteIfExists(state.readyMarker(id));
        Process p = state.serviceProcess(command, log).start();
        boolean[] recorded = {false};
        state.updatePids(m -> {
            Long current = m.get(id);
            if (current != null && current == oldPid) {
                m.put(id, p.pid());
                recorded[0] = true;
            }
        });
        if (!recorded[0]) { // drained or restarted by someone else meanwhile: not ours to run
            p.destroyForcibly();
            return;
        }
        t.pid = p.pid();
        t.child = p;
        t.restarts++;
        t.inARow++;
        t.startedNanos = now;
        t.restartAtNanos = 0;
        t.lastRestartAt = Instant.now().toString();
        t.state = "running";
        LOG.warn("restarted {} as pid {} (restart {})", id, p.pid(), t.restarts);
    }

    /** How the service's last process ended, as far as this process can tell. */
    private String exitOf(String id, Tracked t) throws IOException {
        String why = state.takeExitReason(id).orElse(null);
        String status = t.child != null ? "exited with status " + t.child.exitValue() : "exited";
        if (why != null) {
            return status + " (" + why + ")";
        }
        return t.child != null && t.child.exitValue() == 137 ? status + " (killed)" : status;
    }

    private static boolean isExpertService(List<String> command) {
        int serve = command.indexOf("serve");
        return serve >= 0 && serve + 1 < command.size() && command.get(serve + 1).equals("expert");
    }

    void report(String status) throws IOException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("pid", ProcessHandle.current().pid());
        r.put("status", status);
        r.put("backoff", "restart after " + FIRST_BACKOFF.toMillis() + " ms, doubling per exit in a row up to "
                + MAX_BACKOFF.toSeconds() + " s; reset after " + STABLE_AFTER.toSeconds() + " s running");
        Map<String, Object> services = new LinkedHashMap<>();
        for (Map.Entry<String, Tracked> e : tracked.entrySet()) {
            Tracked t = e.getValue();
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("pid", t.pid);
            s.put("state", t.state);
            s.put("restarts", t.restarts);
            Optional.ofNullable(t.lastExit).ifPresent(x -> s.put("lastExit", x));
            Optional.ofNullable(t.lastExitAt).ifPresent(x -> s.put("lastExitAt", x));
            Optional.ofNullable(t.lastRestartAt).ifPresent(x -> s.put("lastRestartAt", x));
            services.put(e.getKey(), s);
        }
        r.put("services", services);
        String text = r.toString();
        if (!text.equals(lastReport)) {
            state.writeSupervisorReport(r);
            lastReport = text;
        }
    }
}
