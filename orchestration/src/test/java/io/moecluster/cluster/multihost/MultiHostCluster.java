package io.moecluster.cluster.multihost;

import io.aeron.Aeron;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.JvmOptions;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.transport.DataPlaneAuth;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A cluster across three "hosts" ({@link NamespaceHosts}), every service its own process started
 * with {@code moe serve} inside its host's namespace, as an operator would start them on three
 * machines:
 *
 * <pre>
 *   host 0 (198.18.N.1): media driver, router-service (gRPC :50051), attention-0
 *   host 1 (198.18.N.2): media driver, expert-a (every expert)
 *   host 2 (198.18.N.3): media driver, expert-b (every expert: a replica of each on another host)
 * </pre>
 *
 * Each service subscribes on its own UDP endpoint on its host's address; each host has its own
 * media driver (its own Aeron directory, so one cluster file per host differing only there). The
 * data plane is signed with a cluster secret. Drivers may run Aeron's loss generator
 * ({@code DebugReceiveChannelEndpoint}): the given share of data frames each driver receives is
 * dropped and must be recovered by Aeron's NAKs and retransmits.
 */
public final class MultiHostCluster implements AutoCloseable {
    public static final int ROUTER_PORT = 50051;

    private final NamespaceHosts hosts;
    private final Path dir;
    private final Path model;
    private final ClusterSpec spec;
    private final double lossRate;
    private final Map<String, Process> processes = new HashMap<>();
    private final Map<String, Integer> hostOf = new HashMap<>();
    private final List<Aeron> observers = new ArrayList<>();

    private MultiHostCluster(NamespaceHosts hosts, Path dir, Path model, double lossRate) throws IOException {
        this.hosts = hosts;
        this.dir = dir;
        this.model = model;
        this.lossRate = lossRate;
        ModelConfig config = ModelConfig.load(model);
        List<Integer> all = IntStream.range(0, config.expertSlots()).boxed().toList();
        int last = config.numLayers() - 1;
        this.spec = new ClusterSpec(aeronDir(0), "aeron:ipc", false,
                new ClusterSpec.Router("router", hosts.address(0), ROUTER_PORT, 1000, 1001, udp(0, 40100)),
                List.of(new ClusterSpec.Attention("attention-0", hosts.address(0), 50061, 1100, udp(0, 40101))),
                List.of(new ClusterSpec.Expert("expert-a", all, 0, last, 2000, udp(1, 40102)),
                        new ClusterSpec.Expert("expert-b", all, 0, last, 2001, udp(2, 40103))));
    }

    private String udp(int host, int port) {
        return "aeron:udp?endpoint=" + hosts.address(host) + ":" + port;
    }

    private String aeronDir(int host) {
        Path shm = Path.of("/dev/shm");
        Path base = Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        return base.resolve("moemh-" + ProcessHandle.current().pid() + "-" + dir.getFileName() + "-h" + host).toString();
    }

    /**
     * Starts every service and waits until each serves.
     *
     * @param lossRate share of received data frames each media driver drops (0: none)
     */
    public static MultiHostCluster start(NamespaceHosts hosts, Path dir, Path model, double lossRate) throws Exception {
        MultiHostCluster c = new MultiHostCluster(hosts, dir, model, lossRate);
        try {
            c.launchAll();
        } catch (Exception | Error e) {
            c.close();
            throw e;
        }
        return c;
    }

    private Path clusterFile(int host) {
        return dir.resolve("cluster-h" + host + ".json");
    }

    private Path stateDir(int host) {
        return dir.resolve("state-h" + host);
    }

    private void launchAll() throws Exception {
        Files.createDirectories(dir.resolve("logs"));
        Path secret = DataPlaneAuth.writeNewSecret(dir.resolve("data-plane.secret"));
        for (int h = 0; h < 3; h++) {
            new ClusterSpec(aeronDir(h), spec.channel(), spec.embeddedRouter(), spec.router(), spec.attention(),
                    spec.experts()).write(clusterFile(h));
        }
        List<String> env = List.of(DataPlaneAuth.ENV_SECRET_FILE + "=" + secret);
        List<String> driverOptions = new ArrayList<>();
        if (lossRate > 0) {
            driverOptions.add("-Daeron.ReceiveChannelEndpoint.supplier=io.aeron.driver.ext.DebugReceiveChannelEndpointSupplier");
            driverOptions.add("-Daeron.debug.receive.data.loss.rate=" + lossRate);
            driverOptions.add("-Daeron.debug.receive.data.loss.seed=" + 20250513);
        }
        for (int h = 0; h < 3; h++) {
            launch("media-driver-h" + h, h, driverOptions, List.of("serve", "media-driver"), env);
        }
        await(List.of("media-driver-h0", "media-driver-h1", "media-driver-h2"), "media-driver");
        String m = model.toAbsolutePath().toString();
        launch("expert-a", 1, List.of(), List.of("serve", "expert", "--id", "expert-a", "--model", m, "--threads", "1"), env);
        launch("expert-b", 2, List.of(), List.of("serve", "expert", "--id", "expert-b", "--model", m, "--threads", "1"), env);
        launch("attention-0", 0, List.of(), List.of("serve", "attention", "--id", "attention-0", "--model", m,
                "--threads", "1", "--max-batch-tokens", "32", "--max-seq-len", "256"), env);
        await(List.of("expert-a", "expert-b", "attention-0"), null);
        launch("router", 0, List.of(), List.of("serve", "router", "--model", m, "--threads", "1",
                "--max-batch-tokens", "32", "--max-seq-len", "256"), env);
        await(List.of("router"), null);
    }

    private void launch(String id, int host, List<String> jvm, List<String> args, List<String> env) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString()));
        cmd.addAll(JvmOptions.read());
        cmd.add("-Xmx384m");
        cmd.addAll(jvm);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.moecluster.cli.MoeCommand");
        cmd.addAll(args);
        cmd.add("--cluster");
        cmd.add(clusterFile(host).toString());
        cmd.add("--state-dir");
        cmd.add(stateDir(host).toString());
        processes.put(id, hosts.start(host, cmd, log(id), env));
        hostOf.put(id, host);
    }

    /** Waits for the ready markers; {@code marker} names a shared one (every host's driver writes "media-driver"). */
    private void await(List<String> ids, String marker) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        for (String id : ids) {
            Path ready = new ClusterState(stateDir(hostOf.get(id))).readyMarker(marker != null ? marker : id);
            while (!Files.exists(ready)) {
                Process p = processes.get(id);
                if (!p.isAlive()) {
                    throw new IllegalStateException(id + " exited (" + p.exitValue() + ") while starting:\n" + tail(id));
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(id + " did not start within 120 s:\n" + tail(id));
                }
                Thread.sleep(50);
            }
        }
    }

    public Path log(String id) {
        return dir.resolve("logs").resolve(id + ".log");
    }

    /** The last lines of a service's log. */
    public String tail(String id) throws IOException {
        Path log = log(id);
        if (!Files.exists(log)) {
            return "(no log)";
        }
        List<String> lines = Files.readAllLines(log);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    }

    /** The router's gRPC address, reachable from the test's namespace. */
    public String routerAddress() {
        return hosts.address(0) + ":" + ROUTER_PORT;
    }

    public ClusterSpec spec() {
        return spec;
    }

    public NamespaceHosts hosts() {
        return hosts;
    }

    /**
     * A media-driver system counter summed over the three hosts' drivers (e.g. "NAKs sent",
     * "Retransmits sent"), read through their Aeron directories (shared memory: no network).
     */
    public long driverCounter(String label) {
        long sum = 0;
        for (int h = 0; h < 3; h++) {
            if (observers.size() <= h) {
                observers.add(Aeron.connect(new Aeron.Context().aeronDirectoryName(aeronDir(h))));
            }
            long[] value = {0};
            observers.get(h).countersReader().forEach((long counterValue, int counterId, String counterLabel) -> {
                if (counterLabel.startsWith(label)) {
                    value[0] += counterValue;
                }
            });
            sum += value[0];
        }
        return sum;
    }

    @Override
    public void close() {
        for (Aeron a : observers) {
            a.close();
        }
        observers.clear();
        for (Process p : processes.values()) {
            p.destroyForcibly();
        }
        for (Process p : processes.values()) {
            try {
                p.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (int h = 0; h < 3; h++) {
            deleteTree(Path.of(aeronDir(h)));
        }
    }

    private static void deleteTree(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
        } catch (IOException ignored) {
            // A leftover in /dev/shm; the next driver there deletes it on start.
        }
    }
}
