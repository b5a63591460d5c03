package io.moecluster.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code moe scale} and {@code moe drain} on a cluster of real processes: a replica started while
 * requests run takes traffic (status shows it), draining it and scaling back lose no request, and
 * a drain that would leave an expert without a replica is refused.
 */
class LocalScalingProcessTest {
    static final int NEW_TOKENS = 12;

    @TempDir
    Path dir;

    @AfterEach
    void downEvenIfTheTestFailed() {
        MoeCommandTest.moe("down", "--state-dir", dir.resolve("state").toString(), "--grace-s", "5");
    }

    static int[] prompt(int i) {
        return IntStream.range(0, 3 + i).map(j -> j == 0 ? 1 : 3 + (j * 37 + i * 11) % 250).toArray();
    }

    static int[] expected(Path model, int i) {
        try (Engine engine = Engine.open(model, new EngineOptions(1, 32, 256))) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            Sequence s = gen.submit(prompt(i), SamplingParams.greedy(NEW_TOKENS).withIgnoreEos(true), TokenSink.NONE);
            gen.runToCompletion();
            return s.generatedTokens();
        }
    }

    /** Runs {@code during} while 8 requests are in flight; each must equal the single-process engine. */
    static void underLoad(String target, Path model, MoeCommandTest.Run[] during, String... args) throws Exception {
        ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
        ExecutorService clients = Executors.newFixedThreadPool(8);
        try {
            var stub = InferenceGrpc.newBlockingStub(channel);
            List<Future<List<Integer>>> results = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int[] p = prompt(i);
                results.add(clients.submit(() -> stub.withDeadlineAfter(120, TimeUnit.SECONDS).generate(
                        GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder().addAllIds(IntStream.of(p).boxed().toList()))
                                .setSampling(SamplingParameters.newBuilder().setMaxTokens(NEW_TOKENS).setIgnoreEos(true))
                                .build()).getTokenIdsList()));
            }
            during[0] = MoeCommandTest.moe(args);
            for (int i = 0; i < 8; i++) {
                assertThat(results.get(i).get(180, TimeUnit.SECONDS)).as("request %d", i)
                        .containsExactly(IntStream.of(expected(model, i)).boxed().toArray(Integer[]::new));
            }
        } finally {
            clients.shutdownNow();
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void scaleAndDrainAnExpertWhileRequestsRun() throws Exception {
        Path model = dir.resolve("model");
        String state = dir.resolve("state").toString();
        assertThat(MoeCommandTest.moe("model", "make-random", "--arch", "mixtral", "--preset", "tiny", "--dtype", "f32",
                "--seed", "5", model.toString()).exit()).isZero();
        MoeCommandTest.Run up = MoeCommandTest.moe("up", "--model", model.toString(), "--threads", "1",
                "--experts-per-service", "4", "--max-batch-tokens", "32", "--state-dir", state);
        assertThat(up.exit()).as(up.err()).isZero();
        String target = ServerAddress.local(new ClusterState(Path.of(state)));

        MoeCommandTest.Run[] scale = new MoeCommandTest.Run[1];
        underLoad(target, model, scale, "scale", "--expert", "3", "--replicas", "2", "--state-dir", state);
        assertThat(scale[0].exit()).as(scale[0].err()).isZero();
        assertThat(scale[0].out()).contains("started expert-3-r1").contains("expert 3 now has 2 replicas");
        assertThat(new ClusterState(Path.of(state)).pids()).containsKey("expert-3-r1");

        // Traffic after the scale reaches the new replica; status shows it per replica.
        underLoad(target, model, new MoeCommandTest.Run[1], "status", "--state-dir", state);
        MoeCommandTest.Run status = MoeCommandTest.moe("status", "--state-dir", state);
        assertThat(status.out()).contains("expert-3-r1").containsPattern("expert-3-r1 [0-9.]+, [1-9][0-9]*");

        MoeCommandTest.Run refused = MoeCommandTest.moe("drain", "expert-1", "--state-dir", state);
        assertThat(refused.exit()).isEqualTo(1);
        assertThat(refused.err()).contains("would leave expert 4 of layer 0 without a replica");

        long pid = new ClusterState(Path.of(state)).pids().get("expert-3-r1");
        MoeCommandTest.Run[] drain = new MoeCommandTest.Run[1];
        underLoad(target, model, drain, "drain", "expert-3-r1", "--state-dir", state);
        assertThat(drain[0].exit()).as(drain[0].err()).isZero();
        assertThat(drain[0].out()).contains("drained expert-3-r1");
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        assertThat(MoeCommandTest.moe("status", "--state-dir", state).out()).doesNotContain("expert-3-r1");

        MoeCommandTest.Run noop = MoeCommandTest.moe("scale", "--expert", "3", "--replicas", "1", "--state-dir", state);
        assertThat(noop.out()).contains("expert 3 already has 1 replicas");
    }
}
