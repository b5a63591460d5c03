package io.moecluster.cli.cluster;

import io.grpc.ManagedChannel;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.service.security.ClientSecurity;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ServiceStatus;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Adds and removes expert replicas of a local cluster while it serves. The routers watch the
 * cluster file, so a change is one atomic rewrite of it: a new replica is started first and listed
 * once it serves; a replica leaving is unlisted first, so no new batch goes to it, and stopped only
 * once the router holds nothing outstanding there (its SIGTERM handler then answers whatever is
 * still arriving before it exits).
 */
public final class LocalExpertScaler implements AutoCloseable {
    private static final long POLL_MILLIS = 50;

    private final ClusterState state;
    private final PrintWriter out;
    private final Duration timeout;
    private final ClientSecurity security;
    private ManagedChannel admin;

    public LocalExpertScaler(ClusterState state, PrintWriter out, Duration timeout) {
        this(state, out, timeout, ClientSecurity.plaintext());
    }

    /** @param security how to reach the router's Admin API (an operator's credentials in a secured cluster) */
    public LocalExpertScaler(ClusterState state, PrintWriter out, Duration timeout, ClientSecurity security) {
        this.state = state;
        this.out = out;
        this.timeout = timeout;
        this.security = security;
    }

    /** Replicas of {@code expert}: expert services whose list includes it. */
    public static List<ClusterSpec.Expert> hosting(ClusterSpec spec, int expert) {
        return spec.experts().stream().filter(e -> e.experts().contains(expert)).toList();
    }

    /**
     * Whether expert service {@code id} counts as a replica: its process is alive and the router
     * reports it healthy (its publication has a subscriber and it is not in quarantine). A dead
     * one stays listed (the supervisor may bring it back) but is not counted.
     */
    private boolean live(String id, Map<String, Long> pids) {
        boolean alive = Optional.ofNullable(pids.get(id)).flatMap(ProcessHandle::of).map(ProcessHandle::isAlive)
                .orElse(false);
        if (!alive) {
            return false;
        }
        return status(state.spec()).getServicesList().stream().anyMatch(s -> s.getInstanceId().equals(id) && s.getHealthy());
    }

    /** Adds or removes replicas of {@code expert} until {@code replicas} live services host it. */
    public void scale(int expert, int replicas) throws IOException, InterruptedException {
        ClusterSpec spec = state.spec();
        ModelConfig config = ModelConfig.load(state.launchOptions().model());
        int slots = config.expertSlots();
        if (expert < 0 || expert >= slots) {
            throw new IllegalArgumentException("--expert: the model has experts 0-" + (slots - 1) + ", got " + expert);
        }
        if (replicas < 1) {
            throw new IllegalArgumentException("--replicas must be >= 1, got " + replicas);
        }
        Map<String, Long> pids = state.pids();
        List<ClusterSpec.Expert> now = new ArrayList<>();
        for (ClusterSpec.Expert e : hosting(spec, expert)) {
            if (live(e.id(), pids)) {
                now.add(e);
            } else {
                out.printf("%s (hosting expert %d) is not live (process %s, or unhealthy at the router): not counted%n",
                        e.id(), expert, pids.containsKey(e.id()) ? "exited" : "unknown");
            }
        }
        if (now.size() == replicas) {
            out.printf("expert %d already has %d replicas: %s%n", expert, replicas, ids(now));
            return;
        }
        if (now.size() < replicas) {
            LocalClusterLauncher launcher = LocalClusterLauncher.attach(state);
            for (int n = now.size(); n < replicas; n++) {
                ClusterSpec current = state.spec();
                ClusterSpec.Expert added = new ClusterSpec.Expert(freshId(current, expert), List.of(expert), 0,
                        config.numLayers() - 1, freshStream(current));
                launcher.startExpert(added);
                List<ClusterSpec.Expert> services = new ArrayList<>(state.spec().experts());
                services.add(added);
                rewrite(services);
                awaitListed(added.id(), true);
                out.printf("started %s (expert %d, stream %d); expert %d now has %d replicas%n", added.id(), expert,
                        added.streamId(), expert, n + 1);
            }
            return;
        }
        // Fewest-hosted last: replicas moe scale added (hosting only this expert) go first, newest first.
        List<ClusterSpec.Expert> candidates = new ArrayList<>(now);
        candidates.sort((a, b) -> Integer.compare(a.experts().size(), b.experts().size()));
        int left = now.size();
        for (int i = candidates.size() - 1; i >= 0 && left > replicas; i--) {
            ClusterSpec.Expert c = candidates.get(i);
            if (uncovered(state.spec(), c.id(), aliveIds()) == null && c.experts().size() == 1) {
                drain(c.id(), false);
                left--;
            }
        }
        for (ClusterSpec.Expert c : candidates) {
            if (left <= replicas) {
                break;
            }
            if (state.spec().experts().contains(c) && uncovered(state.spec(), c.id(), aliveIds()) == null) {
                drain(c.id(), false);
                left--;
            }
        }
        if (left > replicas) {
            throw new IllegalArgumentException("expert " + expert + " stays at " + left + " replicas: the others also host "
                    + "experts that would be left without a replica");
        }
    }

    /**
     * Stops new batches to {@code id}, waits until none is outstanding there, then stops it.
     *
     * @param force drain even if it leaves an expert without any replica
     */
    public void drain(String id, boolean force) throws IOException, InterruptedException {
        ClusterSpec spec = state.spec();
        if (spec.experts().stream().noneMatch(e -> e.id().equals(id))) {
            throw new IllegalArgumentException("the local cluster has no expert service '" + id + "' (expert services: "
                    + ids(spec.experts()) + ")");
        }
        String uncovered = uncovered(spec, id, aliveIds());
        if (uncovered != null && !force) {
            throw new IllegalArgumentException("draining " + id + " would leave " + uncovered
                    + " without a replica; add one first (moe scale) or pass --force");
        }
        List<ClusterSpec.Expert> rest = new ArrayList<>(spec.experts());
        rest.removeIf(e -> e.id().equals(id));
        long start = System.nanoTime();
        rewrite(rest);
        awaitListed(id, false);
        long pid = Optional.ofNullable(state.pids().get(id)).orElse(-1L);
        Optional<ProcessHandle> p = ProcessHandle.of(pid);
        if (p.isPresent() && p.get().isAlive()) {
            p.get().destroy(); // SIGTERM: it answers what is still arriving, then exits
            try {
                p.get().onExit().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (Exception stillRunning) {
                p.get().destroyForcibly();
                out.printf("%s did not stop within %d s and was killed%n", id, timeout.toSeconds());
            }
        }
        state.updatePids(m -> m.remove(id));
        state.writeCommand(id, null);
        Files.deleteIfExists(state.readyMarker(id));
        out.printf("drained %s in %.1f s%n", id, (System.nanoTime() - start) / 1e9);
    }

    /** The services of the pid file whose process is alive. */
    private Set<String> aliveIds() throws IOException {
        Set<String> alive = new HashSet<>();
        state.pids().forEach((id, pid) -> {
            if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                alive.add(id);
            }
        });
        return alive;
    }

    /**
     * The first (layer, expert) only {@code id} hosts, described; null when every one has another
     * replica whose process is alive (a dead one covers nothing).
     */
    static String uncovered(ClusterSpec spec, String id, Set<String> alive) {
        ClusterSpec.Expert leaving = spec.experts().stream().filter(e -> e.id().equals(id)).findFirst().orElseThrow();
        for (int e : leaving.experts()) {
            for (int l = leaving.firstLayer(); l <= leaving.lastLayer(); l++) {
                int layer = l;
                boolean other = spec.experts().stream().anyMatch(s -> !s.id().equals(id) && alive.contains(s.id())
                        && s.experts().contains(e)
                        && s.firstLayer() <= layer && layer <= s.lastLayer());
                if (!other) {
                    return "expert " + e + " of layer " + l;
                }
            }
        }
        return null;
    }

    private void rewrite(List<ClusterSpec.Expert> services) throws IOException {
        ClusterSpec c = state.spec();
        new ClusterSpec(c.aeronDir(), c.channel(), c.embeddedRouter(), c.router(), c.attention(), services)
                .write(state.clusterFile());
    }

    /**
     * Waits until the router's placement lists {@code id} (or no longer does) and, when leaving, has
     * nothing outstanding there. With embedded routers the router-service's status is the union of
     * the attention replicas' placements (each re-reads the cluster file within a second): a new
     * service counts as listed once it shows healthy there, which it does only when every replica
     * has it, and as gone once none has it, draining included.
     */
    private void awaitListed(String id, boolean listed) throws InterruptedException {
        ClusterSpec spec = state.spec();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            ClusterStatus s = status(spec);
            Optional<ServiceStatus> svc = s.getServicesList().stream().filter(x -> x.getInstanceId().equals(id)).findFirst();
            boolean pickedUp = svc.isPresent() && (!spec.embeddedRouter() || svc.get().getHealthy());
            if (listed ? pickedUp : svc.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the router did not " + (listed ? "pick up " : "let go of ") + id + " within "
                        + timeout.toSeconds() + " s");
            }
            Thread.sleep(POLL_MILLIS);
        }
    }

    private ClusterStatus status(ClusterSpec spec) {
        if (admin == null) {
            admin = security.channel(spec.router().host(), spec.router().grpcPort());
        }
        return AdminGrpc.newBlockingStub(admin).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
    }

    private static String freshId(ClusterSpec spec, int expert) {
        Set<String> taken = new HashSet<>();
        spec.experts().forEach(e -> taken.add(e.id()));
        for (int r = 1; ; r++) {
            String id = "expert-" + expert + "-r" + r;
            if (!taken.contains(id)) {
                return id;
            }
        }
    }

    private static int freshStream(ClusterSpec spec) {
        int max = Math.max(spec.router().moeStreamId(), spec.router().replyStreamId());
        for (ClusterSpec.Attention a : spec.attention()) {
            max = Math.max(max, a.replyStreamId());
        }
        for (ClusterSpec.Expert e : spec.experts()) {
            max = Math.max(max, e.streamId());
        }
        return max + 1;
    }

    private static String ids(List<ClusterSpec.Expert> services) {
        return String.join(", ", services.stream().map(ClusterSpec.Expert::id).toList());
    }

    @Override
    public void close() throws InterruptedException {
        if (admin != null) {
            admin.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
