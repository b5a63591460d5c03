package io.moecluster.router;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.v1.DetokenizeRequest;
import io.moecluster.proto.v1.DetokenizeResponse;
import io.moecluster.proto.v1.FinishReason;
import io.moecluster.proto.v1.Finished;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateResponse;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.GetModelInfoRequest;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.ModelInfo;
import io.moecluster.proto.v1.TokenDelta;
import io.moecluster.proto.v1.TokenizeRequest;
import io.moecluster.proto.v1.TokenizeResponse;
import io.moecluster.proto.v1.Usage;

/**
 * The public Inference API: tokenizes and validates, admits within {@link AdmissionControl}, runs the
 * sequence on an attention replica and turns its tokens into text.
 */
public final class InferenceService extends InferenceGrpc.InferenceImplBase {
    private final ModelConfig config;
    private final TextTokenizer tokenizer;
    private final AttentionPool attention;
    private final AdmissionControl admission;
    private final int maxSequenceLength;
    private final GenerateRequestValidator validator;
    private final RequestMetrics metrics;

    /** @param maxSequenceLength prompt plus completion limit; must not exceed the attention replicas' */
    public InferenceService(ModelConfig config, TextTokenizer tokenizer, AttentionPool attention,
                            AdmissionControl admission, int maxSequenceLength) {
        this(config, tokenizer, attention, admission, maxSequenceLength, RequestMetrics.noop(admission));
    }

    public InferenceService(ModelConfig config, TextTokenizer tokenizer, AttentionPool attention,
                            AdmissionControl admission, int maxSequenceLength, RequestMetrics metrics) {
        this.metrics = metrics;
        this.config = config;
        this.tokenizer = tokenizer;
        this.attention = attention;
        this.admission = admission;
        this.maxSequenceLength = maxSequenceLength;
        this.validator = new GenerateRequestValidator(config, tokenizer, maxSequenceLength);
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
        start(request, responses, prepared -> new CompletionSink() {
            private final GenerateResponse.Builder out = GenerateResponse.newBuilder().setRequestId(prepared.requestId());
            private final StringBuilder text = new StringBuilder();

            @Override
            public void onToken(int tokenId, String delta) {
                out.addTokenIds(tokenId);
                text.append(delta);
            }

            @Override
            public void onTrailingText(String delta) {
                text.append(delta);
            }

            @Override
            public void onFinished(FinishReason reason, Usage usage) {
                responses.onNext(out.setText(text.toString()).setFinishReason(reason).setUsage(usage).build());
                responses.onCompleted();
            }

            @Override
            public void onFailed(Status status) {
                responses.onError(status.asRuntimeException());
            }
        });
    }

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateStreamResponse> responses) {
        start(request, responses, prepared -> new CompletionSink() {
            private final StringBuilder trailing = new StringBuilder();

            @Override
            public void onToken(int tokenId, String delta) {
                responses.onNext(GenerateStreamResponse.newBuilder()
                        .setToken(TokenDelta.newBuilder().setTokenId(tokenId).setText(delta)).build());
            }

            @Override
            public void onTrailingText(String delta) {
                // Belongs to no token: it travels in the final message rather than as a made-up token.
                trailing.append(delta);
            }

            @Override
            public void onFinished(FinishReason reason, Usage usage) {
                responses.onNext(GenerateStreamResponse.newBuilder().setFinished(Finished.newBuilder()
                        .setFinishReason(reason).setUsage(usage).setRequestId(prepared.requestId())
                        .setText(trailing.toString())).build());
                responses.onCompleted();
            }

            @Override
            public void onFailed(Status status) {
                responses.onError(status.asRuntimeException());
            }
        });
    }

    private interface SinkFactory {
        CompletionSink create(PreparedRequest prepared);
    }

    /** Validation, admission and the attention call, shared by Generate and GenerateStream. */
    private void start(GenerateRequest request, StreamObserver<?> responses, SinkFactory sinks) {
        PreparedRequest prepared;
        try {
            prepared = validator.prepare(request);
        } catch (InvalidRequestException e) {
            responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        if (!admission.tryAcquire()) {
            responses.onError(Status.RESOURCE_EXHAUSTED
                    .withDescription("cluster at capacity (" + admission.maxActive() + " active requests)")
                    .asRuntimeException());
            return;
        }
        ServerCallStreamObserver<?> call = (ServerCallStreamObserver<?>) responses;
        GenerationSession session = new GenerationSession(prepared, tokenizer, sinks.create(prepared), admission::release,
                metrics);
        call.setOnCancelHandler(session::cancel);
        try {
            attention.run(prepared.run(), session);
        } catch (RuntimeException e) {
            session.onError(e);
        }
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> responses) {
        int[] ids = tokenizer.encode(request.getText(), !request.hasAddBos() || request.getAddBos());
        TokenizeResponse.Builder out = TokenizeResponse.newBuilder();
        for (int id : ids) {
            out.addTokenIds(id);
        }
        responses.onNext(out.build());
        responses.onCompleted();
    }

    @Override
    public void detokenize(DetokenizeRequest request, StreamObserver<DetokenizeResponse> responses) {
        int[] ids = new int[request.getTokenIdsCount()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = request.getTokenIds(i);
            if (!tokenizer.isKnownId(ids[i])) {
                responses.onError(Status.INVALID_ARGUMENT.withDescription("token_ids[" + i + "] = " + ids[i]
                        + " is not in the vocabulary (size " + tokenizer.vocabSize() + ")").asRuntimeException());
                return;
            }
        }
        responses.onNext(DetokenizeResponse.newBuilder()
                .setText(tokenizer.decode(ids, request.getSkipSpecialTokens())).build());
        responses.onCompleted();
    }

    private int denseLayers() {
        int n = 0;
        for (int l = 0; l < config.numLayers(); l++) {
            n += config.isMoeLayer(l) ? 0 : 1;
        }
        return n;
    }

    @Override
    public void getModelInfo(GetModelInfoRequest request, StreamObserver<ModelInfo> responses) {
        ModelInfo.Builder info = ModelInfo.newBuilder()
                .setModelType(config.architecture().modelType())
                .setVocabSize(config.vocabSize())
                .setHiddenSize(config.hiddenSize())
                .setNumLayers(config.numLayers())
                .setNumExperts(config.numExperts())
                .setExpertsPerToken(config.topK())
                .setSharedExpert(config.hasSharedExpert())
                .setMaxSequenceLength(maxSequenceLength)
                .setBosTokenId(config.bosTokenId())
                .setArchitecture(config.describeArchitecture())
                .setAttention(config.isMla() ? "multi_head_latent" : "grouped_query")
                .setRouting(config.groupRouting() != null ? "sigmoid_group_limited" : "softmax_topk")
                .setKvCacheFloatsPerToken(config.kvCacheFloatsPerToken())
                .setUncompressedKvFloatsPerToken(config.uncompressedKvFloatsPerToken())
                .setDenseLayers(denseLayers())
                .setQuantization(config.quantization() == null ? "" : "fp8_e4m3 " + config.quantization().blockRows()
                        + "x" + config.quantization().blockCols() + " blocks");
        for (int eos : config.eosTokenIds()) {
            info.addEosTokenIds(eos);
        }
        responses.onNext(info.build());
        responses.onCompleted();
    }
}
