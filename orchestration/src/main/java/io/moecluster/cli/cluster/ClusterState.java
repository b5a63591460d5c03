package io.moecluster.cli.cluster;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moecluster.discovery.ClusterSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where {@code moe up} keeps a local cluster's state: the cluster file, each process's pid and
 * log, and the ready markers the services write once they serve. {@code moe down} and
 * {@code moe status} read it back.
 */
public record ClusterState(Path dir) {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public Path clusterFile() {
        return dir.resolve("cluster.json");
    }

    /** The local cluster's data-plane secret, made by {@code moe up} (owner-only). */
    public Path dataPlaneSecret() {
        return dir.resolve("data-plane.secret");
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
        Files.writeString(launchFile(), JSON.writeValueAsString(m));
    }

    public LocalClusterLauncher.Options launchOptions() throws IOException {
        if (!Files.isRegularFile(launchFile())) {
            throw new IllegalArgumentException("no local cluster in " + dir + " (start one with 'moe up')");
        }
        var n = JSON.readTree(launchFile().toFile());
        return new LocalClusterLauncher.Options(Path.of(n.get("model").asText()), n.get("expertsPerService").asInt(),
                n.get("embeddedRouter").asBoolean(), n.get("grpcPort").asInt(), n.get("threads").asInt(),
                n.get("maxBatchTokens").asInt(), Duration.ofSeconds(n.get("startTimeoutSeconds").asLong()),
                n.path("httpPort").asInt(-1), n.hasNonNull("chatTemplate") ? Path.of(n.get("chatTemplate").asText()) : null);
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
        Files.writeString(pidsFile(), JSON.writeValueAsString(pids));
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
