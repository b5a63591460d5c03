package io.moecluster.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.proto.internal.v1.AttentionStatus;
import io.moecluster.proto.internal.v1.AttentionStatusRequest;
import io.moecluster.proto.internal.v1.AttentionWorkerGrpc;
import io.moecluster.proto.internal.v1.RunEvent;
import io.moecluster.proto.internal.v1.RunRequest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AttentionWorker over real loopback gRPC (Netty, free port) on a generated tiny Mixtral. */
class AttentionServerTest {
    static final EngineOptions ENGINE = new EngineOptions(1, 16, 4096);

    @TempDir
    static Path modelDir;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeAll
    static void generateModel() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 7, modelDir);
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    static int[] prompt(int length, int salt) {
        int[] p = new int[length];
        p[0] = 1;
        for (int i = 1; i < length; i++) {
            p[i] = 3 + (i * 37 + salt * 101) % 250;
        }
        return p;
    }

    /** The tokens one process produces for the same greedy request, without gRPC or the loop. */
    static int[] singleProcessGreedy(int[] prompt, int maxTokens) {
        try (Engine engine = Engine.open(modelDir, ENGINE)) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            Sequence s = gen.submit(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true), TokenSink.NONE);
            gen.runToCompletion();
            return s.generatedTokens();
        }
    }

    static RunRequest greedy(int[] prompt, int maxTokens) {
        RunRequest.Builder b = RunRequest.newBuilder().setRequestId("t").setMaxTokens(maxTokens).setIgnoreEos(true);
        for (int id : prompt) {
            b.addPromptTokenIds(id);
        }
        return b.build();
    }

    AttentionServer startServer(int maxRunning, int maxQueued) {
        AttentionServer server = AttentionServer.start(
                new AttentionServer.Config(modelDir, "127.0.0.1", 0, ENGINE, maxRunning, maxQueued));
        toClose.add(server);
        return server;
    }

    ManagedChannel channel(AttentionServer server) {
        ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
        toClose.add(() -> {
            ch.shutdownNow();
            ch.awaitTermination(5, TimeUnit.SECONDS);
        });
        return ch;
    }

    record Result(int[] tokens, String finishReason, double ttftMs) {
    }

    static Result collect(ManagedChannel ch, RunRequest request) {
        Iterator<RunEvent> events = AttentionWorkerGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS)
                .run(request);
        List<Integer> tokens = new ArrayList<>();
        String finish = null;
        double ttft = -1;
        while (events.hasNext()) {
            RunEvent e = events.next();
            if (e.getEventCase() == RunEvent.EventCase.TOKEN_ID) {
                if (tokens.isEmpty()) {
                    ttft = e.getTimeToFirstTokenMs();
                }
                tokens.add(e.getTokenId());
            } else {
                finish = e.getFinishReason();
            }
        }
        return new Result(tokens.stream().mapToInt(Integer::intValue).toArray(), finish, ttft);
    }

    @Test
    void runOfNStreamsEachCompletionByIndexWithLogprobsAndEndsAfterTheLast() {
        AttentionServer server = startServer(4, 4);
        int[] p = prompt(9, 2);
        RunRequest r = greedy(p, 6).toBuilder().setTemperature(0.9f).setSeed(5).setN(3).setLogprobs(true)
                .setTopLogprobs(2).build();
        Iterator<RunEvent> events = AttentionWorkerGrpc.newBlockingStub(channel(server))
                .withDeadlineAfter(60, TimeUnit.SECONDS).run(r);
        List<List<Integer>> tokens = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        List<String> finishes = new ArrayList<>();
        while (events.hasNext()) {
            RunEvent e = events.next();
            if (e.getEventCase() == RunEvent.EventCase.TOKEN_ID) {
                assertThat(finishes).as("tokens come before every finish").hasSizeLessThan(3);
                tokens.get(e.getIndex()).add(e.getTokenId());
                assertThat(e.getTopLogprobsCount()).isEqualTo(2);
                assertThat(e.getLogprob()).isNegative().isLessThanOrEqualTo(e.getTopLogprobs(0).getLogprob());
            } else {
                finishes.add(e.getIndex() + ":" + e.getFinishReason());
            }
        }
        assertThat(finishes).containsExactlyInAnyOrder("0:length", "1:length", "2:length");
        for (int i = 0; i < 3; i++) {
            // Completion i is the single request with seed 5 + i.
            Result alone = collect(channel(server), r.toBuilder().setN(1).setSeed(5 + i).build());
            assertThat(tokens.get(i)).as("completion %d", i).containsExactly(
                    Arrays.stream(alone.tokens()).boxed().toArray(Integer[]::new));
        }
        assertThatThrownBy(() -> collect(channel(server), r.toBuilder().setN(5).build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("n must be in [1, 4]");
                });
        assertThatThrownBy(() -> collect(channel(server), r.toBuilder().setTopLogprobs(21).build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e ->
                        assertThat(e.getStatus().getDescription()).contains("top_logprobs"));
    }

    @Test
    void runStreamsTheSingleProcessGreedyTokens() {
        AttentionServer server = startServer(4, 4);
        int[] p = prompt(9, 1);
        Result r = collect(channel(server), greedy(p, 12));
        assertThat(r.tokens()).containsExactly(singleProcessGreedy(p, 12));
        assertThat(r.finishReason()).isEqualTo("length");
        assertThat(r.ttftMs()).isPositive();
    }

    @Test
    void concurrentRunsOfDifferentLengthsEachGetTheirOwnGreedyTokens() throws Exception {
        AttentionServer server = startServer(3, 8); // fewer slots than calls: some wait, then join mid-flight
        ManagedChannel ch = channel(server);
        int n = 8;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<Result>> results = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                RunRequest r = greedy(prompt(2 + i * 5, i), 6 + i);
                results.add(pool.submit(() -> collect(ch, r)));
            }
            for (int i = 0; i < n; i++) {
                Result r = results.get(i).get(60, TimeUnit.SECONDS);
                assertThat(r.tokens()).as("request %d", i).containsExactly(singleProcessGreedy(prompt(2 + i * 5, i), 6 + i));
                assertThat(r.finishReason()).isEqualTo("length");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void invalidRequestsAreRefusedNamingTheField() {
        ManagedChannel ch = channel(startServer(2, 2));
        assertInvalid(ch, RunRequest.newBuilder().setMaxTokens(4).build(), "prompt_token_ids is empty");
        assertInvalid(ch, greedy(new int[] {1, 259}, 4), "prompt_token_ids[1] = 259");
        assertInvalid(ch, greedy(new int[] {1, 5}, 0), "max_tokens must be >= 1");
        assertInvalid(ch, greedy(new int[] {1, 5}, 4095), "exceeds max-seq-len 4096");
        assertInvalid(ch, greedy(new int[] {1}, 4).toBuilder().setTemperature(-1).build(), "temperature");
        assertInvalid(ch, greedy(new int[] {1}, 4).toBuilder().setTopK(-2).build(), "top_k");
        assertInvalid(ch, greedy(new int[] {1}, 4).toBuilder().setTopP(1.5f).build(), "top_p");
        assertInvalid(ch, greedy(new int[] {1}, 4).toBuilder().addStopTokenIds(-3).build(), "stop_token_ids[0]");
    }

    private static void assertInvalid(ManagedChannel ch, RunRequest r, String message) {
        assertThatThrownBy(() -> collect(ch, r))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains(message);
                });
    }

    /** Starts a long run and returns once it has streamed {@code tokens} tokens; the call can then be cancelled. */
    static ClientCallStreamObserver<RunRequest> startLongRun(ManagedChannel ch, int tokens, CompletableFuture<Throwable> ended)
            throws InterruptedException {
        CountDownLatch streaming = new CountDownLatch(tokens);
        @SuppressWarnings("unchecked")
        ClientCallStreamObserver<RunRequest>[] call = new ClientCallStreamObserver[1];
        AttentionWorkerGrpc.newStub(ch).run(greedy(prompt(5, 3), 4000), new ClientResponseObserver<RunRequest, RunEvent>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<RunRequest> requestStream) {
                call[0] = requestStream;
            }

            @Override
            public void onNext(RunEvent value) {
                streaming.countDown();
            }

            @Override
            public void onError(Throwable t) {
                ended.complete(t);
            }

            @Override
            public void onCompleted() {
                ended.complete(null);
            }
        });
        assertThat(streaming.await(30, TimeUnit.SECONDS)).as("long run started streaming").isTrue();
        return call[0];
    }

    @Test
    void cancellingMidStreamFreesTheSequence() throws Exception {
        AttentionServer server = startServer(2, 2);
        ManagedChannel ch = channel(server);
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        ClientCallStreamObserver<RunRequest> call = startLongRun(ch, 3, ended);
        assertThat(status(ch).getRunningSequences()).isEqualTo(1);
        call.cancel("test cancels", null);
        assertThat(ended.get(10, TimeUnit.SECONDS)).isInstanceOf(StatusRuntimeException.class);
        awaitStatus(ch, s -> assertThat(s.getRunningSequences() + s.getQueuedSequences()).isZero());
        // The replica still serves.
        int[] p = prompt(4, 2);
        assertThat(collect(ch, greedy(p, 5)).tokens()).containsExactly(singleProcessGreedy(p, 5));
    }

    @Test
    void fullReplicaAnswersResourceExhausted() throws Exception {
        AttentionServer server = startServer(1, 0);
        ManagedChannel ch = channel(server);
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        ClientCallStreamObserver<RunRequest> call = startLongRun(ch, 1, ended);
        assertThatThrownBy(() -> collect(ch, greedy(prompt(3, 1), 3)))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                    assertThat(e.getStatus().getDescription()).contains("at capacity");
                });
        call.cancel("done", null);
        ended.get(10, TimeUnit.SECONDS);
        awaitStatus(ch, s -> assertThat(s.getRunningSequences() + s.getQueuedSequences()).isZero());
        assertThat(collect(ch, greedy(prompt(3, 1), 3)).tokens()).hasSize(3);
    }

    static AttentionStatus status(ManagedChannel ch) {
        return AttentionWorkerGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                .status(AttentionStatusRequest.getDefaultInstance());
    }

    static void awaitStatus(ManagedChannel ch, Consumer<AttentionStatus> check) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                check.accept(status(ch));
                return;
            } catch (AssertionError e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(20);
            }
        }
    }
}
