package io.moecluster.cluster.multihost;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.ReplicaLoad;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;

/** What the multi-host tests share: prompts, their single-process tokens, a gRPC client. */
final class MultiHost {
    static final EngineOptions ENGINE = new EngineOptions(1, 32, 256);
    static final int NEW_TOKENS = 12;
    static final Path MODEL = GoldenModels.dir(GoldenModels.MIXTRAL);

    private MultiHost() {
    }

    static int[] prompt(int length, int salt) {
        int[] p = new int[length];
        p[0] = 1;
        for (int i = 1; i < length; i++) {
            p[i] = 3 + (i * 31 + salt * 17) % 250;
        }
        return p;
    }

    /** The single-process engine's greedy tokens for each prompt, one engine for all. */
    static int[][] singleProcess(int[][] prompts) {
        int[][] out = new int[prompts.length][];
        try (Engine engine = Engine.open(MODEL, ENGINE)) {
            for (int i = 0; i < prompts.length; i++) {
                BatchGenerator gen = new BatchGenerator(engine, 1);
                Sequence s = gen.submit(prompts[i], SamplingParams.greedy(NEW_TOKENS).withIgnoreEos(true), TokenSink.NONE);
                gen.runToCompletion();
                out[i] = s.generatedTokens();
            }
        }
        return out;
    }

    static GenerateRequest request(int[] prompt) {
        return GenerateRequest.newBuilder()
                .setTokenIds(TokenIds.newBuilder().addAllIds(IntStream.of(prompt).boxed().toList()))
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(NEW_TOKENS).setIgnoreEos(true))
                .build();
    }

    static ManagedChannel channel(String address) {
        return NettyChannelBuilder.forTarget(address).usePlaintext().build();
    }

    /** Streams one request; each token's arrival (nanoTime) goes to {@code arrivals} when given. */
    static int[] stream(ManagedChannel channel, int[] prompt, List<Long> arrivals) {
        List<Integer> tokens = new ArrayList<>();
        Iterator<GenerateStreamResponse> it = InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS)
                .generateStream(request(prompt));
        while (it.hasNext()) {
            GenerateStreamResponse r = it.next();
            if (r.hasToken()) {
                tokens.add(r.getToken().getTokenId());
                if (arrivals != null) {
                    synchronized (arrivals) {
                        arrivals.add(System.nanoTime());
                    }
                }
            }
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    static ClusterStatus status(ManagedChannel channel) {
        return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
    }

    static long tokensRoutedTo(ClusterStatus s, String replica) {
        return s.getReplicaLoadList().stream().filter(r -> r.getInstanceId().equals(replica))
                .mapToLong(ReplicaLoad::getTokensRouted).sum();
    }

    /** Four concurrent streams of different prompts; asserts each equals the single-process tokens. */
    static void concurrentStreamsMatch(String address) throws Exception {
        int[][] prompts = {prompt(2, 1), prompt(7, 2), prompt(13, 3), prompt(24, 4)};
        int[][] expected = singleProcess(prompts);
        ManagedChannel channel = channel(address);
        ExecutorService clients = Executors.newFixedThreadPool(prompts.length);
        try {
            List<Future<int[]>> results = new ArrayList<>();
            for (int[] p : prompts) {
                results.add(clients.submit(() -> stream(channel, p, null)));
            }
            for (int i = 0; i < prompts.length; i++) {
                assertThat(results.get(i).get(180, TimeUnit.SECONDS)).as("request %d", i).containsExactly(expected[i]);
            }
        } finally {
            clients.shutdownNow();
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    static String describe(StatusRuntimeException e) {
        return e.getStatus().getCode() + ": " + e.getStatus().getDescription();
    }

    /** Appends a measurement to target/multihost/NAME (kept after the run, unlike the test's temporary files). */
    static void record(String name, String line) throws java.io.IOException {
        Path file = java.nio.file.Files.createDirectories(Path.of("target", "multihost")).resolve(name);
        java.nio.file.Files.writeString(file, line + "\n", java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
    }

    static String ms(long nanos) {
        return String.format(Locale.ROOT, "%.0f ms", nanos / 1e6);
    }

    static String list(long[] v) {
        return Arrays.toString(v);
    }
}
