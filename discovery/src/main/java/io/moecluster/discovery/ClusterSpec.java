package io.moecluster.discovery;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The static cluster file of local mode: which services run, where, which experts each expert
 * service hosts, and the Aeron stream each one reads. {@code moe up} writes it; every service
 * reads it. (Consul replaces it in multi-host deployments.)
 *
 * <pre>{@code
 * { "aeronDir": "/dev/shm/moe-demo", "channel": "aeron:ipc", "embeddedRouter": false,
 *   "router":    { "id": "router-0", "host": "127.0.0.1", "grpcPort": 50051, "moeStreamId": 1000, "replyStreamId": 1001 },
 *   "attention": [ { "id": "attention-0", "host": "127.0.0.1", "grpcPort": 50061, "replyStreamId": 1100 } ],
 *   "experts":   [ { "id": "expert-0", "experts": [0,1,2,3], "firstLayer": 0, "lastLayer": 31, "streamId": 2000 } ] }
 * }</pre>
 *
 * @param aeronDir the media driver directory every local service shares (IPC)
 * @param channel the Aeron channel of every service that names none of its own: {@code aeron:ipc} on one host
 * @param embeddedRouter true: each attention replica runs the MoE router in process and talks to
 *     the expert services itself; false: attention replicas send each MoE layer to the router-service
 */
@JsonIgnoreProperties(ignoreUnknown = false)
public record ClusterSpec(
        @JsonProperty(value = "aeronDir", required = true) String aeronDir,
        @JsonProperty(value = "channel", required = true) String channel,
        @JsonProperty(value = "embeddedRouter", required = true) boolean embeddedRouter,
        @JsonProperty(value = "router", required = true) Router router,
        @JsonProperty(value = "attention", required = true) List<Attention> attention,
        @JsonProperty(value = "experts", required = true) List<Expert> experts) {

    /**
     * @param moeStreamId where attention replicas send MoE requests; replyStreamId where experts answer
     * @param channel where this service subscribes, e.g. {@code aeron:udp?endpoint=10.0.0.5:40100} on
     *     another host; null means the cluster-wide {@link ClusterSpec#channel()}
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Router(String id, String host, int grpcPort, int moeStreamId, int replyStreamId, String channel) {
        public Router(String id, String host, int grpcPort, int moeStreamId, int replyStreamId) {
            this(id, host, grpcPort, moeStreamId, replyStreamId, null);
        }
    }

    /** @param replyStreamId where the router (or, embedded, the experts) answer this replica */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Attention(String id, String host, int grpcPort, int replyStreamId, String channel) {
        public Attention(String id, String host, int grpcPort, int replyStreamId) {
            this(id, host, grpcPort, replyStreamId, null);
        }
    }

    /** @param experts hosted expert ids; the shared expert, where the model has one, is {@code num_experts} */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Expert(String id, List<Integer> experts, int firstLayer, int lastLayer, int streamId, String channel) {
        public Expert(String id, List<Integer> experts, int firstLayer, int lastLayer, int streamId) {
            this(id, experts, firstLayer, lastLayer, streamId, null);
        }
    }

    /** The sender id the router uses on the data plane; attention replica i uses {@code i + 1}. */
    public static final int ROUTER_SENDER = 0;

    public String channelOf(Router r) {
        return r.channel() != null ? r.channel() : channel;
    }

    public String channelOf(Attention a) {
        return a.channel() != null ? a.channel() : channel;
    }

    public String channelOf(Expert e) {
        return e.channel() != null ? e.channel() : channel;
    }

    public int senderId(Attention a) {
        return attention.indexOf(a) + 1;
    }

    /** Where to answer a message from {@code senderId}: the router's channel, or that attention replica's. */
    public String replyChannel(int senderId) {
        if (senderId == ROUTER_SENDER) {
            return channelOf(router);
        }
        if (senderId < 1 || senderId > attention.size()) {
            throw new IllegalArgumentException("unknown sender " + senderId + " (the router is 0, attention replicas 1-"
                    + attention.size() + ")");
        }
        return channelOf(attention.get(senderId - 1));
    }

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    public ClusterSpec {
        attention = List.copyOf(attention);
        experts = List.copyOf(experts);
        Set<Integer> streams = new HashSet<>();
        Set<String> ids = new HashSet<>();
        requireUnique(streams, router.moeStreamId(), "router.moeStreamId");
        requireUnique(streams, router.replyStreamId(), "router.replyStreamId");
        requireUnique(ids, router.id(), "router.id");
        if (attention.isEmpty()) {
            throw new IllegalArgumentException("cluster file: at least one attention service is needed");
        }
        for (Attention a : attention) {
            requireUnique(streams, a.replyStreamId(), "attention " + a.id() + " replyStreamId");
            requireUnique(ids, a.id(), "attention id");
        }
        for (Expert e : experts) {
            requireUnique(streams, e.streamId(), "expert service " + e.id() + " streamId");
            requireUnique(ids, e.id(), "expert service id");
            if (e.experts() == null || e.experts().isEmpty()) {
                throw new IllegalArgumentException("cluster file: expert service " + e.id() + " hosts no experts");
            }
            if (e.firstLayer() < 0 || e.lastLayer() < e.firstLayer()) {
                throw new IllegalArgumentException("cluster file: expert service " + e.id() + " has layer range "
                        + e.firstLayer() + "-" + e.lastLayer());
            }
        }
    }

    private static <T> void requireUnique(Set<T> seen, T value, String field) {
        if (!seen.add(value)) {
            throw new IllegalArgumentException("cluster file: " + field + " " + value + " is used twice");
        }
    }

    public static ClusterSpec read(Path file) {
        try {
            return JSON.readValue(file.toFile(), ClusterSpec.class);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": not a valid cluster file: " + e.getMessage(), e);
        }
    }

    /** Replaces {@code file} atomically (a sibling, then a rename): services watching it never read half a file. */
    public void write(Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, JSON.writeValueAsString(this));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    public Expert expertService(String id) {
        return experts.stream().filter(e -> e.id().equals(id)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("cluster file has no expert service '" + id + "'"));
    }

    public Attention attentionService(String id) {
        return attention.stream().filter(a -> a.id().equals(id)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("cluster file has no attention service '" + id + "'"));
    }
}
