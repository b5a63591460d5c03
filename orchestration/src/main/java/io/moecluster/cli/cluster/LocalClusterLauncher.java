package io.moecluster.cli.cluster;

import io.moecluster.attention.AttentionNode;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.moe.ExpertBank;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.IdRanges;
import io.moecluster.transport.DataPlaneAuth;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Starts a local cluster as separate processes, one JVM per service, each {@code moe serve ROLE}
 * on this JVM's runtime and class path, each with its role's heap limit ({@link #DEFAULT_HEAPS}):
 * the media driver first, then the expert services, the attention service and the router. Each
 * step waits for its services' ready markers and fails with the service's log tail if one dies or
 * does not come up in time; whatever was started is stopped again on failure. Every command line
 * is recorded ({@link ClusterState#commands()}), so that the supervisor
 * ({@link LocalSupervisor}, {@link #startSupervisor()}) can start a service again the same way.
 * Logs are appended to, never overwritten; {@code moe up} rotates the previous run's first.
 */
public final class LocalClusterLauncher {
    /**
     * The JVM heap ({@code -Xmx}) of each role unless {@code moe up --heap ROLE=SIZE} says otherwise.
     * Weights are mapped, and activations and KV caches live off the heap, so heaps hold requests,
     * tokenizer and gRPC buffers: small and bounded, so that a burst of large requests fails one
     * request rather than growing a process without limit.
     */
    public static final Map<String, String> DEFAULT_HEAPS = Map.of("media-driver", "128m", "expert", "512m",
            "attention", "1g", "router", "1g", "supervisor", "64m");

    /**
     * @param httpPort the router's OpenAI-compatible API: 0 picks a free port, a negative one turns it off
     * @param chatTemplate a chat template file replacing the model's, or null
     * @param heaps {@code -Xmx} values by role that replace {@link #DEFAULT_HEAPS}' (empty: the defaults)
     * @param supervise whether a supervisor restarts services that exit
     * @param microBatches the attention services' {@code --micro-batches} (1 or 2)
     */
    public record Options(Path model, int expertsPerService, boolean embeddedRouter, int grpcPort, int threads,
                          int maxBatchTokens, Duration startTimeout, int httpPort, Path chatTemplate,
                          Map<String, String> heaps, boolean supervise, int microBatches) {
        public Options {
            if (microBatches < 1 || microBatches > 2) {
                throw new IllegalArgumentException("--micro-batches must be 1 or 2, got " + microBatches);
            }
            heaps = Map.copyOf(heaps);
            for (Map.Entry<String, String> h : heaps.entrySet()) {
                if (!DEFAULT_HEAPS.containsKey(h.getKey())) {
                    throw new IllegalArgumentException("--heap: unknown role '" + h.getKey() + "' (roles: "
                            + String.join(", ", new java.util.TreeSet<>(DEFAULT_HEAPS.keySet())) + ")");
                }
                if (!h.getValue().matches("[0-9]+[kKmMgG]?")) {
                    throw new IllegalArgumentException("--heap: '" + h.getValue() + "' is not a heap size like 512m or 2g");
                }
            }
        }

        /** The attention services' default micro-batches for the layout ({@link #defaultMicroBatches}). */
        public Options(Path model, int expertsPerService, boolean embeddedRouter, int grpcPort, int threads,
                       int maxBatchTokens, Duration startTimeout, int httpPort, Path chatTemplate,
                       Map<String, String> heaps, boolean supervise) {
            this(model, expertsPerService, embeddedRouter, grpcPort, threads, maxBatchTokens, startTimeout, httpPort,
                    chatTemplate, heaps, supervise, defaultMicroBatches(embeddedRouter));
        }

        /**
         * Micro-batches per step of a local cluster's attention services: two (the ping-pong) with
         * the standalone router, whose extra hop they hide; one with an embedded router, since on
         * one host the two halves' attention and experts compete for the same cores and each half
         * pays its own dispatches (bench preset on 2 cores, 32-token prompts, three rounds: 100.0
         * against 103.2 tokens/s, 0.72 against 0.84 of one process).
         */
        public static int defaultMicroBatches(boolean embeddedRouter) {
            return embeddedRouter ? 1 : AttentionNode.DEFAULT_MICRO_BATCHES;
        }

        /** Default heaps, supervised. */
        public Options(Path model, int expertsPerService, boolean embeddedRouter, int grpcPort, int threads,
                       int maxBatchTokens, Duration startTimeout, int httpPort, Path chatTemplate) {
            this(model, expertsPerService, embeddedRouter, grpcPort, threads, maxBatchTokens, startTimeout, httpPort,
                    chatTemplate, Map.of(), true);
        }

        /** With the HTTP API on a free port and the model's chat template. */
        public Options(Path model, int expertsPerService, boolean embeddedRouter, int grpcPort, int threads,
                       int maxBatchTokens, Duration startTimeout) {
            this(model, expertsPerService, embeddedRouter, grpcPort, threads, maxBatchTokens, startTimeout, 0, null);
        }

        Options withHttpPort(int port) {
            return new Options(model, expertsPerService, embeddedRouter, grpcPort, threads, maxBatchTokens, startTimeout,
                    port, chatTemplate, heaps, supervise, microBatches);
        }

        /** The {@code -Xmx} value of {@code role}. */
        public String heap(String role) {
            return heaps.getOrDefault(role, DEFAULT_HEAPS.get(role));
        }
    }

    private final ClusterState state;
    private Options options;
    private final Map<String, Long> pids = new LinkedHashMap<>();
    private final Map<String, String> metrics = new LinkedHashMap<>();

    public LocalClusterLauncher(ClusterState state, Options options) {
        this.state = state;
        this.options = options;
    }

    /**
     * For a cluster {@code moe up} already started: the options it was started with, and its
     * processes, so more expert services can join it ({@code moe scale}).
     */
    public static LocalClusterLauncher attach(ClusterState state) throws IOException {
        LocalClusterLauncher l = new LocalClusterLauncher(state, state.launchOptions());
        l.pids.putAll(state.pids());
        return l;
    }

    /**
     * Lays out the cluster file for {@code config}: experts in groups of {@code expertsPerService}
     * (0: all in one service), fresh ports and streams.
     *
     * <p>Why one expert service by default: the services of one host share its cores, and a second
     * expert service adds a process whose threads take turns with the first's on them, not
     * bandwidth. On the 2-core development machine (bench preset, {@code moe loadgen} at concurrency 8,
     * quiet, {@code scripts/bench-cluster.sh}) one service hosting all 8 experts beat two of four in
     * every round measured: decode alone 1.01-1.18x in six rounds, with 32-token prompts 1.05-1.06x
     * in two.
     */
    public static ClusterSpec layout(ModelConfig config, Options o, Path aeronDir) throws IOException {
        int slots = config.expertSlots();
        if (o.expertsPerService() < 0) {
            throw new IllegalArgumentException("--experts-per-service must be >= 0 (0: all in one service), got "
                    + o.expertsPerService());
        }
        int perService = o.expertsPerService() == 0 ? slots : o.expertsPerService();
        List<ClusterSpec.Expert> experts = new ArrayList<>();
        for (int first = 0, i = 0; first < slots; first += perService, i++) {
            List<Integer> ids = new ArrayList<>();
            for (int e = first; e < Math.min(slots, first + perService); e++) {
                ids.add(e);
            }
            experts.add(new ClusterSpec.Expert("expert-" + i, ids, 0, config.numLayers() - 1, 2000 + i));
        }
        int routerPort = o.grpcPort() > 0 ? o.grpcPort() : ListenPorts.next();
        return new ClusterSpec(aeronDir.toString(), "aeron:ipc", o.embeddedRouter(),
                new ClusterSpec.Router("router", "127.0.0.1", routerPort, 1000, 1001),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", ListenPorts.next(), 1100)),
                experts);
    }

    /** The router's OpenAI-compatible API ({@code http://127.0.0.1:PORT/v1}), or null when it is off. */
    public String httpUrl() {
        return options.httpPort() > 0 ? "http://127.0.0.1:" + options.httpPort() + "/v1" : null;
    }

    /** Each started service's Prometheus scrape URL, by service id. */
    public Map<String, String> metricsEndpoints() {
        return metrics;
    }

    static Path newAeronDir() {
        Path base = Files.isDirectory(Path.of("/dev/shm")) ? Path.of("/dev/shm") : Path.of(System.getProperty("java.io.tmpdir"));
        return base.resolve("moe-" + ProcessHandle.current().pid() + "-" + Integer.toHexString(ThreadLocalRandom.current().nextInt()));
    }

    /** Starts everything and returns the cluster file; on failure stops what it started and rethrows. */
    public ClusterSpec start() throws IOException, InterruptedException {
        ModelConfig config = ModelConfig.load(options.model());
        state.rotateLogs();
        Files.createDirectories(state.dir().resolve("logs"));
        deleteTree(state.dir().resolve("ready"));
        Files.deleteIfExists(state.commandsFile());
        Files.deleteIfExists(state.supervisorFile());
        ClusterSpec spec = layout(config, options, newAeronDir());
        if (options.httpPort() == 0) {
            options = options.withHttpPort(ListenPorts.next());
        }
        spec.write(state.clusterFile());
        state.writeLaunchOptions(options);
        // A fresh secret per local cluster: every message between its services is signed with it.
        DataPlaneAuth.writeNewSecret(state.dataPlaneSecret());
        try {
            launch("media-driver", List.of("serve", "media-driver"));
            await(List.of("media-driver"));
            List<String> expertIds = new ArrayList<>();
            for (ClusterSpec.Expert e : spec.experts()) {
                launch(e.id(), expertArgs(e.id(), List.of()));
                expertIds.add(e.id());
            }
            await(expertIds);
            for (ClusterSpec.Attention a : spec.attention()) {
                launch(a.id(), List.of("serve", "attention", "--id", a.id(), "--model", model(), "--threads", threads(),
                        "--max-batch-tokens", Integer.toString(options.maxBatchTokens()),
                        "--micro-batches", Integer.toString(options.microBatches())));
                await(List.of(a.id()));
            }
            List<String> router = new ArrayList<>(List.of("serve", "router", "--model", model(), "--threads", threads(),
                    "--max-batch-tokens", Integer.toString(options.maxBatchTokens())));
            if (options.httpPort() > 0) {
                router.addAll(List.of("--http-port", Integer.toString(options.httpPort())));
            }
            if (options.chatTemplate() != null) {
                router.addAll(List.of("--chat-template", options.chatTemplate().toAbsolutePath().toString()));
            }
            launch("router", router);
            await(List.of("router"));
            return spec;
        } catch (IOException | InterruptedException | RuntimeException e) {
            LocalClusterStopper.stop(state, pids, Duration.ofSeconds(10));
            throw e;
        }
    }

    private List<String> expertArgs(String id, List<String> more) {
        List<String> args = new ArrayList<>(List.of("serve", "expert", "--id", id, "--model", model(), "--threads", threads(),
                "--max-rows", Integer.toString(options.maxBatchTokens())));
        args.addAll(more);
        return args;
    }

    /**
     * Starts one more expert service process for {@code service}, which is not in the cluster file
     * yet (it describes itself with flags), and waits until it serves. The caller adds it to the
     * cluster file afterwards, so routers only see it once it can answer.
     */
    public void startExpert(ClusterSpec.Expert service) throws IOException, InterruptedException {
        BitSet ids = new BitSet();
        service.experts().forEach(ids::set);
        launch(service.id(), expertArgs(service.id(), List.of("--experts", IdRanges.format(ids),
                "--layers", service.firstLayer() + "-" + service.lastLayer(),
                "--stream-id", Integer.toString(service.streamId()))));
        try {
            await(List.of(service.id()));
        } catch (IllegalStateException e) {
            ProcessHandle.of(pids.get(service.id())).ifPresent(ProcessHandle::destroyForcibly);
            pids.remove(service.id());
            state.updatePids(m -> m.remove(service.id()));
            state.writeCommand(service.id(), null);
            throw e;
        }
    }

    private String model() {
        return options.model().toAbsolutePath().toString();
    }

    /**
     * Compute threads per service. 0 means the cores divided among the compute services of this
     * host, but at least two where it has two: the services of a step take turns (attention, then
     * the router and the experts, two micro-batches apart), so a second thread lets a service use
     * the core another one has left idle. On the 2-core development machine, otherwise idle, two
     * threads each gave 1.06-1.16x the tokens/s of one each in eight rounds over two sessions
     * (`moe loadgen` at concurrency 8, bench preset); on a machine kept busy by other work they
     * gained nothing with two micro-batches and lost with one, and spent more CPU spinning, so
     * pass {@code --threads 1} on a shared host.
     */
    private String threads() {
        if (options.threads() > 0) {
            return Integer.toString(options.threads());
        }
        ClusterSpec spec = ClusterSpec.read(state.clusterFile());
        // As laid out by moe up: replicas added later share the same cores, like any other process.
        int services = spec.experts().size() + spec.attention().size() + (spec.embeddedRouter() ? 0 : 1);
        int cores = Runtime.getRuntime().availableProcessors();
        return Integer.toString(Math.max(Math.min(2, cores), cores / services));
    }

    /** The role of a service id, as {@link #DEFAULT_HEAPS} names it. */
    static String role(List<String> args) {
        return args.get(0).equals("serve") ? args.get(1) : args.get(0);
    }

    /** {@code java} with the moe JVM options, the heap limit of {@code role}, and {@code moe ARGS}. */
    private List<String> javaCommand(String role, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(JvmOptions.read());
        cmd.add("-Xmx" + options.heap(role));
        // A service out of heap exits (its supervisor restarts it) rather than limping on.
        cmd.add("-XX:+ExitOnOutOfMemoryError");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.moecluster.cli.MoeCommand");
        cmd.addAll(args);
        return cmd;
    }

    /**
     * Starts the supervisor of this cluster ({@code moe supervise}), which restarts any service that
     * exits, with backoff ({@link LocalSupervisor}); it is recorded in the pid file as
     * {@code supervisor} and is the first thing {@code moe down} stops.
     */
    public void startSupervisor() throws IOException {
        List<String> cmd = javaCommand("supervisor", List.of("supervise", "--state-dir",
                state.dir().toAbsolutePath().toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(state.log("supervisor").toFile())).start();
        pids.put(LocalSupervisor.ID, p.pid());
        state.updatePids(m -> m.put(LocalSupervisor.ID, p.pid()));
    }

    private void launch(String id, List<String> args) throws IOException {
        List<String> cmd = javaCommand(role(args), args);
        cmd.add("--cluster");
        cmd.add(state.clusterFile().toAbsolutePath().toString());
        cmd.add("--state-dir");
        cmd.add(state.dir().toAbsolutePath().toString());
        if (!id.equals("media-driver")) {
            int port = ListenPorts.next();
            cmd.add("--metrics-port");
            cmd.add(Integer.toString(port));
            metrics.put(id, "http://127.0.0.1:" + port + "/metrics");
        }
        state.writeCommand(id, cmd);
        Process p = state.serviceProcess(cmd, state.log(id)).start();
        pids.put(id, p.pid());
        state.updatePids(m -> m.put(id, p.pid()));
    }

    private void await(List<String> ids) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + options.startTimeout().toNanos();
        for (String id : ids) {
            while (!Files.exists(state.readyMarker(id))) {
                boolean alive = ProcessHandle.of(pids.get(id)).map(ProcessHandle::isAlive).orElse(false);
                if (!alive) {
                    throw new IllegalStateException(id + " exited while starting; its log (" + state.log(id) + ") ends:\n"
                            + tail(state.log(id), 15));
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(id + " did not start within " + options.startTimeout().toSeconds()
                            + " s; its log (" + state.log(id) + ") ends:\n" + tail(state.log(id), 15));
                }
                Thread.sleep(50);
            }
        }
    }

    static String tail(Path log, int lines) throws IOException {
        if (!Files.exists(log)) {
            return "(no log)";
        }
        List<String> all = Files.readAllLines(log);
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
