package io.moecluster.cli.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moecluster.attention.AttentionNode;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.transport.DataPlaneAuth;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Where {@code moe up} keeps a local cluster's state: the cluster file, each process's pid, command
 * line and log, the ready markers the services write once they serve, and what the supervisor
 * reports. {@code moe down} and {@code moe status} read it back. Several processes change it (the
 * launcher, the supervisor, {@code moe scale} and {@code moe drain}): read-modify-writes of the pid
 * and command files hold a lock file, and every file is replaced atomically.
 */
public record ClusterState(Path dir) {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** Within one JVM (the tests run moe commands in process) a file lock is not re-entrant across threads. */
    private static final ReentrantLock IN_PROCESS = new ReentrantLock();
    /** Logs kept per service: the current one and this many earlier ones ({@code .log.1} the newest). */
    public static final int KEPT_LOGS = 5;

    public Path clusterFile() {
        return dir.resolve("cluster.json");
    }

    /** The local cluster's data-plane secret, made by {@code moe up} (owner-only). */
    public Path dataPlaneSecret() {
        return dir.resolve("data-plane.secret");
    }

    /**
     * A service process of this cluster, its output appended to {@code log}: with the cluster's
     * data-plane secret in its environment when the cluster has one, so that a service started
     * later (a restart by the supervisor, a replica added by {@code moe scale}) signs as the others do.
     */
    public ProcessBuilder serviceProcess(List<String> command, Path log) {
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        if (Files.exists(dataPlaneSecret())) {
            builder.environment().put(DataPlaneAuth.ENV_SECRET_FILE, dataPlaneSecret().toAbsolutePath().toString());
        }
        return builder;
    }

    public Path pidsFile() {
        return dir.resolve("pids.json");
    }

    public Path log(String id) {
        return dir.resolve("logs").resolve(id + ".log");
    }

    public Path readyMarker(String id) {
        return dir.resolve("ready").resolve(id);
    }

    /** The options {@code moe up} started the cluster with, for services started later. */
    public Path launchFile() {
        return dir.resolve("launch.json");
    }

    public void writeLaunchOptions(LocalClusterLauncher.Options o) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", o.model().toAbsolutePath().toString());
        m.put("expertsPerService", o.expertsPerService());
        m.put("embeddedRouter", o.embeddedRouter());
        m.put("grpcPort", o.grpcPort());
        m.put("threads", o.threads());
        m.put("maxBatchTokens", o.maxBatchTokens());
        m.put("startTimeoutSeconds", o.startTimeout().toSeconds());
        m.put("httpPort", o.httpPort());
        if (o.chatTemplate() != null) {
            m.put("chatTemplate", o.chatTemplate().toAbsolutePath().toString());
        }
        m.put("heaps", o.heaps());
        m.put("supervise", o.supervise());
        m.put("microBatches", o.microBatches());
        Files.writeString(launchFile(), JSON.writeValueAsString(m));
    }

    public LocalClusterLauncher.Options launchOptions() throws IOException {
        if (!Files.isRegularFile(launchFile())) {
            throw new IllegalArgumentException("no local cluster in " + dir + " (start one with 'moe up')");
        }
        var n = JSON.readTree(launchFile().toFile());
        Map<String, String> heaps = new LinkedHashMap<>();
        n.path("heaps").fields().forEachRemaining(e -> heaps.put(e.getKey(), e.getValue().asText()));
        return new LocalClusterLauncher.Options(Path.of(n.get("model").asText()), n.get("expertsPerService").asInt(),
                n.get("embeddedRouter").asBoolean(), n.get("grpcPort").asInt(), n.get("threads").asInt(),
                n.get("maxBatchTokens").asInt(), Duration.ofSeconds(n.get("startTimeoutSeconds").asLong()),
                n.path("httpPort").asInt(-1), n.hasNonNull("chatTemplate") ? Path.of(n.get("chatTemplate").asText()) : null,
                heaps, n.path("supervise").asBoolean(true), n.path("microBatches").asInt(AttentionNode.DEFAULT_MICRO_BATCHES));
    }

    public boolean exists() {
        return Files.isRegularFile(pidsFile());
    }

    public ClusterSpec spec() {
        if (!Files.isRegularFile(clusterFile())) {
            throw new IllegalArgumentException("no local cluster in " + dir + " (start one with 'moe up')");
        }
        return ClusterSpec.read(clusterFile());
    }

    /** Process ids by service id, in start order. */
    @SuppressWarnings("unchecked")
    public Map<String, Long> pids() throws IOException {
        if (!exists()) {
            return new LinkedHashMap<>();
        }
        Map<String, Number> raw = JSON.readValue(pidsFile().toFile(), LinkedHashMap.class);
        Map<String, Long> out = new LinkedHashMap<>();
        raw.forEach((k, v) -> out.put(k, v.longValue()));
        return out;
    }

    public void writePids(Map<String, Long> pids) throws IOException {
        writeAtomically(pidsFile(), JSON.writeValueAsString(pids));
    }

    /** Changes the pid file under the state lock: {@code change} gets the current map, which is then written. */
    public void updatePids(Consumer<Map<String, Long>> change) throws IOException {
        locked(() -> {
            Map<String, Long> pids = pids();
            change.accept(pids);
            writePids(pids);
        });
    }

    /** The command lines the services were started with, by id: what the supervisor restarts them with. */
    public Path commandsFile() {
        return dir.resolve("commands.json");
    }

    @SuppressWarnings("unchecked")
    public Map<String, List<String>> commands() throws IOException {
        if (!Files.isRegularFile(commandsFile())) {
            return new LinkedHashMap<>();
        }
        return JSON.readValue(commandsFile().toFile(), LinkedHashMap.class);
    }

    /** Records how service {@code id} is started (null: forget it). */
    public void writeCommand(String id, List<String> command) throws IOException {
        locked(() -> {
            Map<String, List<String>> all = commands();
            if (command == null) {
                all.remove(id);
            } else {
                all.put(id, command);
            }
            writeAtomically(commandsFile(), JSON.writeValueAsString(all));
        });
    }

    /**
     * A service that exits on purpose says why here (e.g. its Aeron client was lost), for the
     * supervisor's report: it cannot learn the exit status of a process it did not start.
     */
    public static void writeExitReason(Path stateDir, String id, String why) {
        if (stateDir == null) {
            return;
        }
        try {
            Path f = stateDir.resolve("exits").resolve(id);
            Files.createDirectories(f.getParent());
            writeAtomically(f, why);
        } catch (IOException e) {
            // Only a report; the exit itself matters.
        }
    }

    /** The reason service {@code id} left ({@link #writeExitReason}), removed as it is read. */
    public Optional<String> takeExitReason(String id) throws IOException {
        Path f = dir.resolve("exits").resolve(id);
        if (!Files.isRegularFile(f)) {
            return Optional.empty();
        }
        String why = Files.readString(f).strip();
        Files.deleteIfExists(f);
        return Optional.of(why);
    }

    /** What the supervisor of {@code moe up} reports: its pid and, per service, restarts and state. */
    public Path supervisorFile() {
        return dir.resolve("supervisor.json");
    }

    public void writeSupervisorReport(Object report) throws IOException {
        writeAtomically(supervisorFile(), JSON.writeValueAsString(report));
    }

    /** The supervisor's last report, or null when there is none. */
    public JsonNode supervisorReport() throws IOException {
        return Files.isRegularFile(supervisorFile()) ? JSON.readTree(supervisorFile().toFile()) : null;
    }

    /**
     * Keeps the previous runs' logs: each {@code logs/ID.log} becomes {@code ID.log.1}, the older
     * ones move up by one, and the oldest past {@link #KEPT_LOGS} is deleted. {@code moe up} calls
     * it before it starts anything.
     */
    public void rotateLogs() throws IOException {
        Path logs = dir.resolve("logs");
        if (!Files.isDirectory(logs)) {
            return;
        }
        List<Path> current;
        try (var files = Files.list(logs)) {
            current = files.filter(p -> p.getFileName().toString().endsWith(".log")).toList();
        }
        for (Path log : current) {
            String name = log.getFileName().toString();
            Files.deleteIfExists(logs.resolve(name + "." + KEPT_LOGS));
            for (int i = KEPT_LOGS - 1; i >= 1; i--) {
                Path older = logs.resolve(name + "." + i);
                if (Files.exists(older)) {
                    Files.move(older, logs.resolve(name + "." + (i + 1)), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            Files.move(log, logs.resolve(name + ".1"), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    interface IoAction {
        void run() throws IOException;
    }

    /** Runs {@code action} holding the state directory's lock (this JVM's threads and other processes). */
    void locked(IoAction action) throws IOException {
        Files.createDirectories(dir);
        IN_PROCESS.lock();
        try (FileChannel ch = FileChannel.open(dir.resolve("state.lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE); FileLock ignored = ch.lock()) {
            action.run();
        } finally {
            IN_PROCESS.unlock();
        }
    }

    /** Readers never see half a file: written beside it, then moved over it. */
    static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid() + "-"
                + Thread.currentThread().threadId());
        Files.writeString(tmp, text);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Marks a service as serving; called by the service process itself. */
    public static void markReady(Path stateDir, String id) throws IOException {
        if (stateDir == null) {
            return;
        }
        Path marker = new ClusterState(stateDir).readyMarker(id);
        Files.createDirectories(marker.getParent());
        Files.writeString(marker, Long.toString(ProcessHandle.current().pid()));
    }
}
