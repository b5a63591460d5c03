package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionNode;
import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.model.CheckpointQuantizer;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.GetModelInfoRequest;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.ModelInfo;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import io.moecluster.router.RouterNode;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The cluster over its real transports, in one JVM: an embedded Aeron media driver (IPC), two
 * expert services of four experts each, an attention service and a router-service serving gRPC on
 * loopback. Greedy tokens must equal the single-process engine's exactly, in both router modes.
 */
class ClusterEndToEndTest {
    static final EngineOptions ENGINE = new EngineOptions(1, 32, 256);
    static final int NEW_TOKENS = 10;

    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void stopEverything() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Each service's own UDP endpoint on loopback, as it would be on its own host; null = the shared IPC channel. */
    static String endpoint(boolean udp) throws IOException {
        if (!udp) {
            return null;
        }
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            return "aeron:udp?endpoint=127.0.0.1:" + s.getLocalPort();
        }
    }

    ClusterSpec spec(EmbeddedMediaDriver driver, ModelConfig config, boolean embedded, boolean udp) throws IOException {
        int last = config.numLayers() - 1;
        // Half the routed experts on each service (0-3 and 4-7 for eight), the shared expert on the second.
        int half = config.numExperts() / 2;
        List<Integer> low = new ArrayList<>(IntStream.range(0, half).boxed().toList());
        List<Integer> high = new ArrayList<>(IntStream.range(half, config.numExperts()).boxed().toList());
        if (config.hasSharedExpert()) {
            high.add(config.numExperts());
        }
        return new ClusterSpec(driver.aeronDirectoryName(), "aeron:ipc", embedded,
                new ClusterSpec.Router("router-0", "127.0.0.1", freePort(), 1000, 1001, endpoint(udp)),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", freePort(), 1100, endpoint(udp))),
                List.of(new ClusterSpec.Expert("expert-0", low, 0, last, 2000, endpoint(udp)),
                        new ClusterSpec.Expert("expert-1", high, 0, last, 2001, endpoint(udp))));
    }

    record Cluster(ClusterSpec spec, Path model, RouterNode router, ManagedChannel channel) {
        InferenceGrpc.InferenceBlockingStub inference() {
            return InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
        }
    }

    Cluster start(String model, boolean embedded) throws Exception {
        return start(model, embedded, false);
    }

    /** An expert service of these tests: one thread, rows up to the engine's max-batch-tokens. */
    static ExpertNode.Context expert(ClusterSpec spec, String id, Path model) {
        return new ExpertNode.Context().cluster(spec).id(id).model(model).threads(1).maxRows(ENGINE.maxBatchTokens());
    }

    /** The attention service of these tests: 8 running, 16 queued, 15 s per MoE layer. */
    static AttentionNode.Context attention(ClusterSpec spec, Path model) {
        return new AttentionNode.Context().cluster(spec).id("attention-0").model(model).engine(ENGINE).maxRunning(8)
                .maxQueued(16).moeTimeout(Duration.ofSeconds(15));
    }

    /** The router of these tests: 32 active requests, one gate thread, 5 s per expert batch. */
    static RouterNode.Context router(ClusterSpec spec, Path model) {
        return new RouterNode.Context().cluster(spec).model(model).maxActiveRequests(32)
                .maxBatchTokens(ENGINE.maxBatchTokens()).threads(1).expertTimeout(Duration.ofSeconds(5));
    }

    /** Quantized golden models ({@code <golden>-int8}), written once per class and removed after it. */
    @TempDir
    static Path int8Models;

    /** A golden model's directory; {@code <golden>-int8} is that model after {@code moe model quantize --format int8}. */
    static synchronized Path modelDir(String model) throws IOException {
        if (!model.endsWith("-int8")) {
            return GoldenModels.dir(model);
        }
        Path out = int8Models.resolve(model);
        if (!Files.exists(out.resolve("config.json"))) {
            CheckpointQuantizer.quantize(GoldenModels.dir(model.substring(0, model.length() - "-int8".length())), out,
                    false, 0);
        }
        return out;
    }

    Cluster start(String model, boolean embedded, boolean udp) throws Exception {
        Path dir = modelDir(model);
        ModelConfig config = ModelConfig.load(dir);
        EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        ClusterSpec spec = spec(driver, config, embedded, udp);
        for (ClusterSpec.Expert e : spec.experts()) {
            open.add(ExpertNode.launch(expert(spec, e.id(), dir)));
        }
        open.add(AttentionNode.launch(attention(spec, dir)));
        RouterNode router = RouterNode.launch(router(spec, dir));
        open.add(router);
        ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
        open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        return new Cluster(spec, dir, router, channel);
    }

    static int[] prompt(int length, int salt) {
        int[] p = new int[length];
        p[0] = 1;
        for (int i = 1; i < length; i++) {
            p[i] = 3 + (i * 31 + salt * 17) % 250;
        }
        return p;
    }

    static int[] singleProcessGreedy(Path model, int[] prompt) {
        try (Engine engine = Engine.open(model, ENGINE)) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            Sequence s = gen.submit(prompt, SamplingParams.greedy(NEW_TOKENS).withIgnoreEos(true), TokenSink.NONE);
            gen.runToCompletion();
            return s.generatedTokens();
        }
    }

    static GenerateRequest request(int[] prompt) {
        return GenerateRequest.newBuilder()
                .setTokenIds(TokenIds.newBuilder().addAllIds(IntStream.of(prompt).boxed().toList()))
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(NEW_TOKENS).setIgnoreEos(true))
                .build();
    }

    static int[] streamTokens(Cluster c, int[] prompt) {
        List<Integer> tokens = new ArrayList<>();
        Iterator<GenerateStreamResponse> it = c.inference().generateStream(request(prompt));
        while (it.hasNext()) {
            GenerateStreamResponse r = it.next();
            if (r.hasToken()) {
                tokens.add(r.getToken().getTokenId());
            }
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    @ParameterizedTest(name = "{0}, embedded router: {1}")
    @CsvSource({"mixtral-tiny, false", "mixtral-tiny, true", "qwen2moe-tiny, false", "qwen2moe-tiny, true",
        "deepseek-v3-tiny, false", "deepseek-v3-tiny, true", "deepseek-v3-tiny-fp8, false", "deepseek-v3-tiny-fp8, true"})
    void eightConcurrentStreamsMatchTheSingleProcessEngine(String model, boolean embedded) throws Exception {
        eightConcurrentStreams(model, embedded);
    }

    /** int8 weights (moe model quantize): the expert and attention services load them as the engine does. */
    @ParameterizedTest(name = "{0}, embedded router: {1}")
    @CsvSource({"mixtral-tiny-int8, false", "deepseek-v3-tiny-int8, true"})
    void int8ModelsServeTheSameTokensAsTheSingleProcessEngine(String model, boolean embedded) throws Exception {
        eightConcurrentStreams(model, embedded);
    }

    private void eightConcurrentStreams(String model, boolean embedded) throws Exception {
        Cluster c = start(model, embedded);
        ModelConfig config = ModelConfig.load(c.model());
        ModelInfo info = c.inference().getModelInfo(GetModelInfoRequest.getDefaultInstance());
        assertThat(info.getModelType()).isEqualTo(config.architecture().modelType());
        assertThat(info.getArchitecture()).isEqualTo(config.describeArchitecture());
        assertThat(info.getAttention()).isEqualTo(config.isMla() ? "multi_head_latent" : "grouped_query");
        assertThat(info.getRouting()).isEqualTo(config.isMla() ? "sigmoid_group_limited" : "softmax_topk");
        assertThat(info.getKvCacheFloatsPerToken()).isEqualTo(config.kvCacheFloatsPerToken());
        assertThat(info.getNumExperts()).isEqualTo(config.numExperts());
        int[] lengths = {1, 3, 6, 9, 14, 20, 27, 36};
        int[][] expected = new int[lengths.length][];
        for (int i = 0; i < lengths.length; i++) {
            expected[i] = singleProcessGreedy(c.model(), prompt(lengths[i], i));
        }
        ExecutorService clients = Executors.newFixedThreadPool(lengths.length);
        try {
            List<Future<int[]>> results = new ArrayList<>();
            for (int i = 0; i < lengths.length; i++) {
                int[] p = prompt(lengths[i], i);
                results.add(clients.submit(() -> streamTokens(c, p)));
            }
            for (int i = 0; i < lengths.length; i++) {
                assertThat(results.get(i).get(120, TimeUnit.SECONDS)).as("request %d (prompt %d tokens)", i, lengths[i])
                        .containsExactly(expected[i]);
            }
        } finally {
            clients.shutdownNow();
        }
        ClusterStatus status = AdminGrpc.newBlockingStub(c.channel()).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
        assertThat(status.getServicesList()).extracting(s -> s.getInstanceId())
                .contains("expert-0", "expert-1");
        // Embedded routers report their counts in the attention replica's Status; the
        // router-service sums them, so both modes show the load that autoscale acts on.
        long routed = status.getExpertLoadList().stream()
                .filter(l -> l.getExpert() < config.numExperts()).mapToLong(l -> l.getTokensRouted()).sum();
        assertThat(routed).as("tokens routed, all layers").isPositive();
        for (int e = 0; e < config.numExperts(); e++) {
            int expert = e;
            long toExpert = status.getExpertLoadList().stream().filter(l -> l.getExpert() == expert)
                    .mapToLong(l -> l.getTokensRouted()).sum();
            long toReplicas = status.getReplicaLoadList().stream().filter(l -> l.getExpert() == expert)
                    .mapToLong(l -> l.getTokensRouted()).sum();
            assertThat(toReplicas).as("expert %d: tokens its replicas got", e).isEqualTo(toExpert);
        }
        assertThat(status.getServicesList()).filteredOn(s -> s.getRole() == ServiceRole.SERVICE_ROLE_EXPERT)
                .allSatisfy(s -> assertThat(s.getHealthy()).as(s.getInstanceId()).isTrue());
    }

    /**
     * The ping-pong pipeline ({@code --micro-batches 2}): steps of the eight streams are split in two
     * micro-batches whose MoE layers are at the router (or, embedded, at the expert services) while
     * the other one's attention runs; the tokens stay those of the single-process engine, as with
     * whole steps ({@code 1}).
     */
    @ParameterizedTest(name = "{0}, micro-batches {1}, embedded router: {2}")
    @CsvSource({"mixtral-tiny, 1, false", "mixtral-tiny, 2, false", "qwen2moe-tiny, 2, false", "deepseek-v3-tiny, 2, false",
        "mixtral-tiny, 1, true", "mixtral-tiny, 2, true", "qwen2moe-tiny, 2, true", "deepseek-v3-tiny, 2, true"})
    void microBatchesGiveTheSingleProcessTokens(String model, int microBatches, boolean embedded) throws Exception {
        Path dir = GoldenModels.dir(model);
        AttentionNode[] attention = new AttentionNode[1];
        Cluster c = startWithMicroBatches(dir, embedded, microBatches, attention);
        int[] lengths = {2, 5, 1, 8, 3, 13, 4, 6};
        ExecutorService clients = Executors.newFixedThreadPool(lengths.length);
        try {
            List<Future<int[]>> results = new ArrayList<>();
            for (int i = 0; i < lengths.length; i++) {
                int[] p = prompt(lengths[i], i + 70);
                results.add(clients.submit(() -> streamTokens(c, p)));
            }
            for (int i = 0; i < lengths.length; i++) {
                assertThat(results.get(i).get(120, TimeUnit.SECONDS)).as("request %d (prompt %d tokens)", i, lengths[i])
                        .containsExactly(singleProcessGreedy(dir, prompt(lengths[i], i + 70)));
            }
        } finally {
            clients.shutdownNow();
        }
        long split = attention[0].server().engine().transformer().pingPongSteps();
        if (microBatches == 1) {
            assertThat(split).isZero();
        } else {
            assertThat(split).as("steps run as two micro-batches").isPositive();
        }
    }

    /** Reads {@code stream} to its end, which must be UNAVAILABLE naming {@code service}. */
    static void assertEndsUnavailableNaming(Iterator<GenerateStreamResponse> stream, String service) {
        assertThatThrownBy(() -> {
            while (stream.hasNext()) {
                stream.next();
            }
        }).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
            assertThat(e.getStatus().getDescription()).contains(service);
        });
    }

    /** A cluster whose attention service runs {@code microBatches}; {@code attention[0]} gets it. */
    Cluster startWithMicroBatches(Path dir, boolean embedded, int microBatches, AttentionNode[] attention)
            throws Exception {
        EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        ClusterSpec spec = spec(driver, ModelConfig.load(dir), embedded, false);
        for (ClusterSpec.Expert e : spec.experts()) {
            open.add(ExpertNode.launch(expert(spec, e.id(), dir)));
        }
        attention[0] = AttentionNode.launch(attention(spec, dir).microBatches(microBatches));
        open.add(attention[0]);
        RouterNode router = RouterNode.launch(router(spec, dir));
        open.add(router);
        ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
        open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        return new Cluster(spec, dir, router, channel);
    }

    /**
     * An expert service lost while steps run as two micro-batches: every stream in flight fails
     * UNAVAILABLE naming it (whichever half's layer hit it), none hangs; once it is back, concurrent
     * requests give the single-process tokens again (no answer of the failed steps leaks into them).
     */
    @ParameterizedTest(name = "{0}, embedded router: {1}")
    @CsvSource({"mixtral-tiny, false", "mixtral-tiny, true"})
    void losingAnExpertWithTwoMicroBatchesFailsEveryStreamAndHeals(String model, boolean embedded) throws Exception {
        Path dir = GoldenModels.dir(model);
        AttentionNode[] attention = new AttentionNode[1];
        Cluster c = startWithMicroBatches(dir, embedded, 2, attention);
        int[] a = prompt(5, 81);
        int[] b = prompt(9, 82);
        List<Iterator<GenerateStreamResponse>> streams = new ArrayList<>();
        for (int[] p : List.of(a, b, a, b)) {
            GenerateRequest longRequest = GenerateRequest.newBuilder(request(p))
                    .setSampling(SamplingParameters.newBuilder().setMaxTokens(200).setIgnoreEos(true)).build();
            Iterator<GenerateStreamResponse> stream = c.inference().generateStream(longRequest);
            assertThat(stream.next().hasToken()).isTrue();
            streams.add(stream);
        }
        AutoCloseable expert1 = open.get(2);
        long start = System.nanoTime();
        expert1.close();
        open.remove(expert1);
        for (Iterator<GenerateStreamResponse> stream : streams) {
            assertEndsUnavailableNaming(stream, "expert-1");
        }
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
        assertThat(attention[0].server().engine().transformer().pingPongSteps()).isPositive();

        open.add(ExpertNode.launch(expert(c.spec(), "expert-1", c.model())));
        ExecutorService clients = Executors.newFixedThreadPool(2);
        try {
            Future<int[]> first = clients.submit(() -> streamTokens(c, a));
            Future<int[]> second = clients.submit(() -> streamTokens(c, b));
            assertThat(first.get(120, TimeUnit.SECONDS)).containsExactly(singleProcessGreedy(dir, a));
            assertThat(second.get(120, TimeUnit.SECONDS)).containsExactly(singleProcessGreedy(dir, b));
        } finally {
            clients.shutdownNow();
        }
    }

    /** The multi-host configuration (every service on its own UDP endpoint), exercised on loopback. */
    @ParameterizedTest(name = "{0} over UDP, embedded router: {1}")
    @CsvSource({"qwen2moe-tiny, false", "qwen2moe-tiny, true"})
    void servicesOnTheirOwnUdpEndpointsGiveTheSameTokens(String model, boolean embedded) throws Exception {
        Cluster c = start(model, embedded, true);
        assertThat(c.spec().channelOf(c.spec().experts().get(1))).startsWith("aeron:udp?endpoint=127.0.0.1:");
        ExecutorService clients = Executors.newFixedThreadPool(4);
        try {
            List<Future<int[]>> results = new ArrayList<>();
            int[] lengths = {2, 7, 13, 30};
            for (int i = 0; i < lengths.length; i++) {
                int[] p = prompt(lengths[i], i + 40);
                results.add(clients.submit(() -> streamTokens(c, p)));
            }
            for (int i = 0; i < lengths.length; i++) {
                assertThat(results.get(i).get(120, TimeUnit.SECONDS)).as("request %d", i)
                        .containsExactly(singleProcessGreedy(c.model(), prompt(lengths[i], i + 40)));
            }
        } finally {
            clients.shutdownNow();
        }
    }

    @ParameterizedTest(name = "{0}, embedded router: {1}")
    @CsvSource({"mixtral-tiny, false", "mixtral-tiny, true"})
    void losingAnExpertServiceFailsRequestsClearlyAndItsReturnHeals(String model, boolean embedded) throws Exception {
        Cluster c = start(model, embedded);
        int[] p = prompt(7, 3);
        int[] expected = singleProcessGreedy(c.model(), p);
        assertThat(c.inference().generate(request(p)).getTokenIdsList()).containsExactly(
                IntStream.of(expected).boxed().toArray(Integer[]::new));

        // A long stream is in flight when expert-1 (the second node opened) goes away.
        GenerateRequest longRequest = GenerateRequest.newBuilder(request(p))
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(200).setIgnoreEos(true)).build();
        Iterator<GenerateStreamResponse> stream = c.inference().generateStream(longRequest);
        assertThat(stream.next().hasToken()).isTrue();
        AutoCloseable expert1 = open.get(2);
        long start = System.nanoTime();
        expert1.close();
        open.remove(expert1);
        assertEndsUnavailableNaming(stream, "expert-1");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
        // New requests fail the same way while it is gone; the router and attention stay up.
        assertThatThrownBy(() -> c.inference().generate(request(p)))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));

        open.add(ExpertNode.launch(expert(c.spec(), "expert-1", c.model())));
        assertThat(c.inference().generate(request(p)).getTokenIdsList()).containsExactly(
                IntStream.of(expected).boxed().toArray(Integer[]::new));
    }
}
