package io.moecluster.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import io.moecluster.attention.AttentionServer;
import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.DetokenizeRequest;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateResponse;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.GetModelInfoRequest;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.ServiceRole;
import io.moecluster.proto.v1.TokenIds;
import io.moecluster.proto.v1.TokenizeRequest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Router and attention servers, both real Netty servers on loopback, over a generated tiny Mixtral. */
class RouterEndToEndTest {
    static final EngineOptions ENGINE = new EngineOptions(1, 16, 4096);
    static final String PROMPT = "hello moe cluster";

    @TempDir
    static Path modelDir;

    private final List<AutoCloseable> toClose = new ArrayList<>();
    private AttentionServer attention;
    private ManagedChannel channel;

    @BeforeAll
    static void generateModel() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 11, modelDir);
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    void startCluster(int maxActiveRequests) {
        attention = AttentionServer.start(new AttentionServer.Config(modelDir, "127.0.0.1", 0, ENGINE, 4, 16));
        toClose.add(attention);
        RouterServer router = RouterServer.start(new RouterServer.Config(modelDir, "127.0.0.1", 0,
                List.of(attention.address()), maxActiveRequests, 0, List.of()));
        toClose.add(router);
        ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", router.port()).usePlaintext().build();
        toClose.add(() -> {
            ch.shutdownNow();
            ch.awaitTermination(5, TimeUnit.SECONDS);
        });
        channel = ch;
    }

    InferenceGrpc.InferenceBlockingStub inference() {
        return InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
    }

    static GenerateRequest textRequest(String text, int maxTokens) {
        return GenerateRequest.newBuilder().setText(text)
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(maxTokens).setIgnoreEos(true)).build();
    }

    record Streamed(String text, List<Integer> tokens, GenerateStreamResponse finished) {
    }

    Streamed stream(GenerateRequest r) {
        StringBuilder text = new StringBuilder();
        List<Integer> tokens = new ArrayList<>();
        GenerateStreamResponse finished = null;
        Iterator<GenerateStreamResponse> it = inference().generateStream(r);
        while (it.hasNext()) {
            GenerateStreamResponse e = it.next();
            if (e.hasToken()) {
                text.append(e.getToken().getText());
                assertThat(e.getToken().getTokenId()).as("token ids are real ids").isNotNegative();
                tokens.add(e.getToken().getTokenId());
            } else {
                finished = e;
                text.append(e.getFinished().getText()); // text held back until the end
            }
        }
        return new Streamed(text.toString(), tokens, finished);
    }

    /** What one process generates and decodes for the same greedy request. */
    static String singleProcessGreedyText(String text, int maxTokens) {
        ModelConfig config = ModelConfig.load(modelDir);
        try (Engine engine = Engine.open(modelDir, ENGINE);
             TextTokenizer tok = TextTokenizer.load(modelDir, config.bosTokenId())) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            Sequence s = gen.submit(tok.encode(text, true), SamplingParams.greedy(maxTokens).withIgnoreEos(true),
                    TokenSink.NONE);
            gen.runToCompletion();
            return tok.decode(s.generatedTokens(), true);
        }
    }

    @Test
    void streamedDeltasMatchGenerateAndTheSingleProcessResult() {
        startCluster(8);
        Streamed s = stream(textRequest(PROMPT, 20));
        GenerateResponse whole = inference().generate(textRequest(PROMPT, 20));
        assertThat(s.text()).isEqualTo(whole.getText()).isEqualTo(singleProcessGreedyText(PROMPT, 20));
        assertThat(s.tokens()).containsExactlyElementsOf(whole.getTokenIdsList());
        var fin = s.finished().getFinished();
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(fin.getUsage().getPromptTokens())
                .isEqualTo(inference().tokenize(TokenizeRequest.newBuilder().setText(PROMPT).build()).getTokenIdsCount());
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(20);
        assertThat(fin.getUsage().getTimeToFirstTokenMs()).isPositive();
        assertThat(fin.getUsage().getTotalTimeMs()).isGreaterThanOrEqualTo(fin.getUsage().getTimeToFirstTokenMs());
        assertThat(fin.getRequestId()).isNotEmpty();
        assertThat(whole.getUsage().getCompletionTokens()).isEqualTo(20);
        assertThat(inference().detokenize(DetokenizeRequest.newBuilder().addAllTokenIds(whole.getTokenIdsList())
                .setSkipSpecialTokens(true).build()).getText()).isEqualTo(whole.getText());
        assertThat(inference().getModelInfo(GetModelInfoRequest.getDefaultInstance()).getVocabSize()).isEqualTo(259);
    }

    @Test
    void nCompletionsAndLogprobsOverGrpc() {
        startCluster(8);
        SamplingParameters sampling = SamplingParameters.newBuilder().setMaxTokens(6).setIgnoreEos(true)
                .setTemperature(1f).setSeed(11).setN(3).setLogprobs(true).setTopLogprobs(3).build();
        GenerateRequest r = textRequest(PROMPT, 6).toBuilder().setSampling(sampling).build();
        GenerateResponse whole = inference().generate(r);
        assertThat(whole.getChoicesList()).extracting(c -> c.getIndex()).containsExactly(0, 1, 2);
        assertThat(whole.getUsage().getCompletionTokens()).isEqualTo(18);
        assertThat(whole.getText()).isEqualTo(whole.getChoices(0).getText());
        for (int i = 0; i < 3; i++) {
            var choice = whole.getChoices(i);
            assertThat(choice.getTokenIdsCount()).isEqualTo(6);
            assertThat(choice.getLogprobsList()).hasSize(6).allSatisfy(lp -> {
                assertThat(lp.getTopLogprobsCount()).isEqualTo(3);
                assertThat(lp.getLogprob()).isLessThanOrEqualTo(lp.getTopLogprobs(0).getLogprob());
            });
            // Completion i is the request for one completion with seed 11 + i.
            GenerateResponse alone = inference().generate(r.toBuilder().setSampling(sampling.toBuilder().setN(1)
                    .setSeed(11 + i)).build());
            assertThat(choice.getTokenIdsList()).as("completion %d", i).isEqualTo(alone.getTokenIdsList());
            assertThat(choice.getText()).isEqualTo(alone.getText());
            assertThat(choice.getLogprobsList()).isEqualTo(alone.getLogprobsList());
        }
        // Streamed: each token carries its completion's index, and each completion its own Finished.
        List<List<Integer>> streamed = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        List<Integer> finished = new ArrayList<>();
        Iterator<GenerateStreamResponse> it = inference().generateStream(r);
        while (it.hasNext()) {
            GenerateStreamResponse e = it.next();
            if (e.hasToken()) {
                streamed.get(e.getToken().getIndex()).add(e.getToken().getTokenId());
                assertThat(e.getToken().getLogprobs().getTokenId()).isEqualTo(e.getToken().getTokenId());
            } else {
                finished.add(e.getFinished().getIndex());
                assertThat(e.getFinished().getUsage().getCompletionTokens()).isEqualTo(6);
            }
        }
        assertThat(finished).containsExactlyInAnyOrder(0, 1, 2);
        for (int i = 0; i < 3; i++) {
            assertThat(streamed.get(i)).isEqualTo(whole.getChoices(i).getTokenIdsList());
        }
    }

    @Test
    void stopSequenceEndsTheCompletionAndIsTrimmed() {
        startCluster(8);
        String free = inference().generate(textRequest(PROMPT, 20)).getText();
        // A stop sequence taken from the middle of the free-running text.
        String stop = free.substring(5, 8);
        GenerateRequest r = textRequest(PROMPT, 20).toBuilder()
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(20).setIgnoreEos(true).addStopSequences(stop))
                .build();
        Streamed s = stream(r);
        assertThat(s.text()).isEqualTo(free.substring(0, free.indexOf(stop)));
        assertThat(s.finished().getFinished().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP_SEQUENCE);
        assertThat(inference().generate(r).getText()).isEqualTo(s.text());
    }

    @Test
    void concurrentStreamsAllComplete() throws Exception {
        startCluster(16);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<Streamed>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                GenerateRequest r = textRequest(PROMPT.repeat(i + 1), 5 + i);
                futures.add(pool.submit(() -> stream(r)));
            }
            for (int i = 0; i < 8; i++) {
                Streamed s = futures.get(i).get(60, TimeUnit.SECONDS);
                assertThat(s.tokens()).hasSize(5 + i);
                assertThat(s.finished().getFinished().getUsage().getCompletionTokens()).isEqualTo(5 + i);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void admissionLimitAnswersResourceExhausted() throws Exception {
        startCluster(1);
        CompletableFuture<Void> firstToken = new CompletableFuture<>();
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        var ctx = Context.current().withCancellation();
        ctx.run(() -> InferenceGrpc.newStub(channel).generateStream(textRequest(PROMPT, 4000),
                new StreamObserver<>() {
                    @Override
                    public void onNext(GenerateStreamResponse value) {
                        firstToken.complete(null);
                    }

                    @Override
                    public void onError(Throwable t) {
                        ended.complete(t);
                    }

                    @Override
                    public void onCompleted() {
                        ended.complete(null);
                    }
                }));
        firstToken.get(30, TimeUnit.SECONDS);
        assertThatThrownBy(() -> inference().generate(textRequest("x", 2)))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                    assertThat(e.getStatus().getDescription()).isEqualTo("cluster at capacity (1 active requests)");
                });
        ClusterStatus status = AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
        assertThat(status.getActiveRequests()).isEqualTo(1);
        assertThat(status.getMaxActiveRequests()).isEqualTo(1);
        assertThat(status.getServicesList()).singleElement().satisfies(s -> {
            assertThat(s.getInstanceId()).isEqualTo(attention.address());
            assertThat(s.getRole()).isEqualTo(ServiceRole.SERVICE_ROLE_ATTENTION);
            assertThat(s.getHealthy()).isTrue();
            assertThat(s.getRunningSequences()).isEqualTo(1);
        });
        // Client cancellation gives the slot back and stops the attention run.
        ctx.cancel(null);
        assertThat(ended.get(10, TimeUnit.SECONDS)).isInstanceOf(StatusRuntimeException.class);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (attention.loop().runningCount() + attention.loop().queuedCount() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(attention.loop().runningCount()).isZero();
        assertThat(inference().generate(textRequest("x", 2)).getUsage().getCompletionTokens()).isEqualTo(2);
    }

    /**
     * The in-process experts, with MoE layer 0 held while {@link #hold} is set: the attention
     * replica's step stops there, as a long step or a slow expert would stop it.
     */
    static final class HeldFeedForward implements io.moecluster.core.attention.FeedForward, AutoCloseable {
        final io.moecluster.core.moe.LocalFeedForward inner;
        final java.util.concurrent.atomic.AtomicBoolean hold;
        final java.util.concurrent.CountDownLatch held;
        final java.util.concurrent.CountDownLatch goOn;

        HeldFeedForward(io.moecluster.core.moe.LocalFeedForward inner, java.util.concurrent.atomic.AtomicBoolean hold,
                        java.util.concurrent.CountDownLatch held, java.util.concurrent.CountDownLatch goOn) {
            this.inner = inner;
            this.hold = hold;
            this.held = held;
            this.goOn = goOn;
        }

        @Override
        public void forward(int layer, java.lang.foreign.MemorySegment input, int tokens,
                            java.lang.foreign.MemorySegment output) {
            if (layer == 0 && hold.getAndSet(false)) {
                held.countDown();
                try {
                    goOn.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            inner.forward(layer, input, tokens, output);
        }

        @Override
        public void close() throws Exception {
            inner.close();
        }
    }

    /**
     * Issue 13, defect 3, through the router: 300 streams opened while the attention replica's step
     * is held (its queue fills, the rest are refused), then the open ones cancelled. The replica's
     * queue empties at once (not when the step ends), the router counts only the request still
     * running, and a normal request is accepted and completes instead of RESOURCE_EXHAUSTED.
     * Bound: the cancellations cross one gRPC hop; 30 s is generous for that on a loaded machine.
     */
    @Test
    void aCancelStormThroughTheRouterLeavesNothingQueued() throws Exception {
        var hold = new java.util.concurrent.atomic.AtomicBoolean();
        var held = new java.util.concurrent.CountDownLatch(1);
        var goOn = new java.util.concurrent.CountDownLatch(1);
        attention = AttentionServer.start(new AttentionServer.Config(modelDir, "127.0.0.1", 0, ENGINE, 2, 8,
                (config, loader, backend, maxTokens) -> new HeldFeedForward(
                        new io.moecluster.core.moe.LocalFeedForward(config, loader, backend, maxTokens), hold, held, goOn)));
        toClose.add(attention);
        toClose.add(goOn::countDown); // closed before the attention server: never leave its loop held
        RouterServer router = RouterServer.start(new RouterServer.Config(modelDir, "127.0.0.1", 0,
                List.of(attention.address()), 64, 0, List.of()));
        toClose.add(router);
        channel = NettyChannelBuilder.forAddress("127.0.0.1", router.port()).usePlaintext().build();
        ManagedChannel ch = channel;
        toClose.add(() -> ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));

        hold.set(true);
        CompletableFuture<Throwable> first = streamInBackground(textRequest(PROMPT, 3));
        assertThat(held.await(30, TimeUnit.SECONDS)).isTrue();
        List<Context.CancellableContext> storm = new ArrayList<>();
        List<CompletableFuture<Throwable>> ends = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            Context.CancellableContext ctx = Context.current().withCancellation();
            storm.add(ctx);
            GenerateRequest r = textRequest("storm " + i, 8);
            ends.add(ctx.wrap(() -> streamInBackground(r)).call());
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (attention.loop().queuedCount() < 7 && System.nanoTime() < deadline) {
            Thread.sleep(10); // the replica's queue fills (1 running + 1 waiting slot + 8 queued, less the first)
        }
        assertThat(attention.loop().queuedCount()).as("queued at the replica before the cancels").isGreaterThanOrEqualTo(7);
        storm.forEach(ctx -> ctx.cancel(null));
        for (CompletableFuture<Throwable> end : ends) {
            assertThat(end.get(30, TimeUnit.SECONDS)).isInstanceOf(StatusRuntimeException.class);
        }
        while (attention.loop().queuedCount() > 1 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(attention.loop().queuedCount()).as("queued at the replica after the cancels, step still held")
                .isLessThanOrEqualTo(1);
        ClusterStatus status = AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
        assertThat(status.getActiveRequests()).isEqualTo(1);
        CompletableFuture<Throwable> normal = streamInBackground(textRequest("a normal request", 3));
        goOn.countDown();
        assertThat(normal.get(30, TimeUnit.SECONDS)).as("the normal request's end").isNull();
        assertThat(first.get(30, TimeUnit.SECONDS)).isNull();
    }

    /** A stream read to its end in the background: null when it completed, else what it failed with. */
    private CompletableFuture<Throwable> streamInBackground(GenerateRequest r) {
        CompletableFuture<Throwable> end = new CompletableFuture<>();
        InferenceGrpc.newStub(channel).generateStream(r, new StreamObserver<>() {
            @Override
            public void onNext(GenerateStreamResponse value) {
            }

            @Override
            public void onError(Throwable t) {
                end.complete(t);
            }

            @Override
            public void onCompleted() {
                end.complete(null);
            }
        });
        return end;
    }

    @Test
    void badInputIsRefusedNamingTheField() {
        startCluster(4);
        assertInvalid(GenerateRequest.newBuilder().build(), "input is missing");
        assertInvalid(GenerateRequest.newBuilder().setText("").build(), "text is empty");
        assertInvalid(GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder().addIds(1).addIds(999)).build(),
                "token_ids.ids[1] = 999");
        assertInvalid(textRequest("hi", 4).toBuilder()
                .setSampling(SamplingParameters.newBuilder().setTemperature(-0.5f)).build(), "sampling.temperature");
        assertInvalid(textRequest("hi", 4).toBuilder()
                .setSampling(SamplingParameters.newBuilder().setTopP(2f)).build(), "sampling.top_p");
        assertInvalid(textRequest("hi", 4).toBuilder()
                .setSampling(SamplingParameters.newBuilder().setMaxTokens(-1)).build(), "sampling.max_tokens");
        // Issue 13, defect 6: text past the limit is refused before it is tokenized, on every method.
        int limit = Math.max(RequestValidator.MIN_MAX_INPUT_CHARS, RequestValidator.MAX_CHARS_PER_POSITION
                * inference().getModelInfo(GetModelInfoRequest.getDefaultInstance()).getMaxSequenceLength());
        String huge = "x".repeat(limit + 1);
        assertInvalid(textRequest(huge, 4), "text has " + huge.length() + " characters; at most");
        assertThatThrownBy(() -> inference().tokenize(TokenizeRequest.newBuilder().setText(huge).build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("text has");
                });
        assertThat(inference().tokenize(TokenizeRequest.newBuilder().setText("x".repeat(1000)).build()).getTokenIdsCount())
                .isPositive();
        assertThatThrownBy(() -> inference().detokenize(DetokenizeRequest.newBuilder().addTokenIds(5000).build()))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e ->
                        assertThat(e.getStatus().getDescription()).contains("token_ids[0] = 5000"));
    }

    private void assertInvalid(GenerateRequest r, String message) {
        for (Runnable call : List.<Runnable>of(() -> inference().generate(r), () -> stream(r))) {
            assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(e.getStatus().getDescription()).contains(message);
            });
        }
    }

    /** Raw bytes as a request: what a buggy or hostile client can send. */
    static final io.grpc.MethodDescriptor.Marshaller<byte[]> BYTES = new io.grpc.MethodDescriptor.Marshaller<>() {
        @Override
        public java.io.InputStream stream(byte[] value) {
            return new java.io.ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(java.io.InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    };

    private Status raw(io.grpc.MethodDescriptor<?, ?> method, byte[] request) {
        io.grpc.MethodDescriptor<byte[], byte[]> m = method.toBuilder(BYTES, BYTES).build();
        try {
            if (m.getType() == io.grpc.MethodDescriptor.MethodType.UNARY) {
                io.grpc.stub.ClientCalls.blockingUnaryCall(channel, m,
                        io.grpc.CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), request);
            } else {
                io.grpc.stub.ClientCalls.blockingServerStreamingCall(channel, m,
                        io.grpc.CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), request).forEachRemaining(b -> { });
            }
            return Status.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus();
        }
    }

    /**
     * Invalid UTF-8 in a string field, a truncated message and one nested past protobuf's depth
     * limit are INVALID_ARGUMENT (not UNKNOWN), on every public method; the router serves on.
     */
    @Test
    void unreadableRequestsAreInvalidArgument() {
        startCluster(4);
        byte[] badUtf8Text = {0x0a, 0x02, (byte) 0xc3, 0x28}; // field 1 (text) = C3 28
        byte[] truncated = {0x0a, 0x09, 0x68, 0x69}; // field 1 claims 9 bytes, 2 follow
        // SamplingParameters (field 3 of GenerateRequest) holding unknown group fields 200 levels deep.
        java.io.ByteArrayOutputStream deep = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < 200; i++) {
            deep.write(0x0b); // field 1, start group
        }
        for (int i = 0; i < 200; i++) {
            deep.write(0x0c); // field 1, end group
        }
        byte[] nested = deep.toByteArray();
        for (var method : List.of(InferenceGrpc.getTokenizeMethod(), InferenceGrpc.getGenerateMethod(),
                InferenceGrpc.getGenerateStreamMethod())) {
            for (byte[] request : List.of(badUtf8Text, truncated, nested)) {
                Status s = raw(method, request);
                assertThat(s.getCode()).as("%s %s", method.getBareMethodName(), s).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(s.getDescription()).contains("is not a valid message");
            }
        }
        assertThat(raw(AdminGrpc.getGetClusterStatusMethod(), truncated).getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(inference().tokenize(TokenizeRequest.newBuilder().setText(PROMPT).build()).getTokenIdsCount())
                .isPositive();
    }

    @Test
    void attentionDownGivesUnavailableNotAHang() {
        startCluster(4);
        attention.close();
        assertThatThrownBy(() -> InferenceGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS)
                .generate(textRequest(PROMPT, 4)))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                    assertThat(e.getStatus().getDescription()).contains("attention replica failed");
                });
        ClusterStatus status = AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
        assertThat(status.getServices(0).getHealthy()).isFalse();
        assertThat(status.getActiveRequests()).isZero();
    }

    @Test
    void healthAndReflectionAreServed() throws Exception {
        startCluster(4);
        assertThat(HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance()).getStatus())
                .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
        CompletableFuture<ServerReflectionResponse> reply = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
                .serverReflectionInfo(new StreamObserver<>() {
                    @Override
                    public void onNext(ServerReflectionResponse value) {
                        reply.complete(value);
                    }

                    @Override
                    public void onError(Throwable t) {
                        reply.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        List<String> services = reply.get(10, TimeUnit.SECONDS).getListServicesResponse().getServiceList().stream()
                .map(ServiceResponse::getName).toList();
        requests.onCompleted();
        assertThat(services).contains("moe.v1.Inference", "moe.v1.Admin", "grpc.health.v1.Health");
    }
}
