package io.moecluster.router;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.v1.Choice;
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
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenDelta;
import io.moecluster.proto.v1.TokenLogprobs;
import io.moecluster.proto.v1.TokenizeRequest;
import io.moecluster.proto.v1.TokenizeResponse;
import io.moecluster.proto.v1.Usage;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The public Inference API over gRPC: turns a GenerateRequest into a {@link PreparedRequest}
 * (tokenizing text input) and the {@link GenerationService}'s callbacks into Generate and
 * GenerateStream responses; admission, the attention call and stop sequences are the service's.
 */
public final class InferenceService extends InferenceGrpc.InferenceImplBase {
    private final ModelConfig config;
    private final TextTokenizer tokenizer;
    private final GenerationService generation;
    private final int maxSequenceLength;

    public InferenceService(GenerationService generation) {
        this.generation = generation;
        this.config = generation.config();
        this.tokenizer = generation.tokenizer();
        this.maxSequenceLength = generation.validator().maxSequenceLength();
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
        start(request, responses, prepared -> new CompletionListener() {
            private final Choice.Builder[] choices = new Choice.Builder[prepared.n()];
            private final StringBuilder[] texts = new StringBuilder[prepared.n()];

            {
                for (int i = 0; i < choices.length; i++) {
                    choices[i] = Choice.newBuilder().setIndex(i);
                    texts[i] = new StringBuilder();
                }
            }

            @Override
            public void onToken(int index, int tokenId, String delta, TokenLogprobs logprobs) {
                choices[index].addTokenIds(tokenId);
                if (logprobs != null) {
                    choices[index].addLogprobs(logprobs);
                }
                texts[index].append(delta);
            }

            @Override
            public void onTrailingText(int index, String delta) {
                texts[index].append(delta);
            }

            @Override
            public void onChoiceFinished(int index, FinishReason reason, Usage usage) {
                choices[index].setFinishReason(reason).setText(texts[index].toString())
                        .setCompletionTokens(usage.getCompletionTokens());
            }

            @Override
            public void onFinished(Usage usage) {
                Choice first = choices[0].build();
                GenerateResponse.Builder out = GenerateResponse.newBuilder().setRequestId(prepared.requestId())
                        .setText(first.getText()).addAllTokenIds(first.getTokenIdsList())
                        .setFinishReason(first.getFinishReason()).addAllLogprobs(first.getLogprobsList())
                        .setUsage(usage);
                for (Choice.Builder c : choices) {
                    out.addChoices(c);
                }
                responses.onNext(out.build());
                responses.onCompleted();
            }

            @Override
            public void onFailed(GenerationError error) {
                responses.onError(status(error).asRuntimeException());
            }
        });
    }

    @Override
    public void generateStream(GenerateRequest request, StreamObserver<GenerateStreamResponse> responses) {
        start(request, responses, prepared -> new CompletionListener() {
            private final StringBuilder[] trailing = new StringBuilder[prepared.n()];

            @Override
            public void onToken(int index, int tokenId, String delta, TokenLogprobs logprobs) {
                TokenDelta.Builder token = TokenDelta.newBuilder().setTokenId(tokenId).setText(delta).setIndex(index);
                if (logprobs != null) {
                    token.setLogprobs(logprobs);
                }
                responses.onNext(GenerateStreamResponse.newBuilder().setToken(token).build());
            }

            @Override
            public void onTrailingText(int index, String delta) {
                // Belongs to no token: it travels in the final message rather than as a made-up token.
                if (trailing[index] == null) {
                    trailing[index] = new StringBuilder();
                }
                trailing[index].append(delta);
            }

            @Override
            public void onChoiceFinished(int index, FinishReason reason, Usage usage) {
                responses.onNext(GenerateStreamResponse.newBuilder().setFinished(Finished.newBuilder()
                        .setFinishReason(reason).setUsage(usage).setRequestId(prepared.requestId()).setIndex(index)
                        .setText(trailing[index] == null ? "" : trailing[index].toString())).build());
            }

            @Override
            public void onFinished(Usage usage) {
                responses.onCompleted();
            }

            @Override
            public void onFailed(GenerationError error) {
                responses.onError(status(error).asRuntimeException());
            }
        });
    }

    static Status status(GenerationError error) {
        Status s = switch (error.kind()) {
            case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
            case RESOURCE_EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
            case UNAVAILABLE -> Status.UNAVAILABLE;
        };
        return s.withDescription(error.message());
    }

    private interface ListenerFactory {
        CompletionListener create(PreparedRequest prepared);
    }

    /** Validation and the generation call, shared by Generate and GenerateStream. */
    private void start(GenerateRequest request, StreamObserver<?> responses, ListenerFactory listeners) {
        PreparedRequest prepared;
        try {
            prepared = prepare(request);
        } catch (InvalidRequestException e) {
            responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        ServerCallStreamObserver<?> call = (ServerCallStreamObserver<?>) responses;
        // The handler must be set before this method returns; a cancel that lands before the call
        // exists is caught by the isCancelled() check below.
        AtomicReference<GenerationCall> running = new AtomicReference<>();
        call.setOnCancelHandler(() -> {
            GenerationCall c = running.get();
            if (c != null) {
                c.cancel();
            }
        });
        running.set(generation.start(prepared, listeners.create(prepared)));
        if (call.isCancelled()) {
            running.get().cancel();
        }
    }

    /** The request's prompt and sampling fields, in the validator's terms. */
    PreparedRequest prepare(GenerateRequest r) throws InvalidRequestException {
        int[] prompt = switch (r.getInputCase()) {
            case TEXT -> {
                if (r.getText().isEmpty()) {
                    throw new InvalidRequestException("text", "text is empty");
                }
                yield tokenizer.encode(generation.validator().checkTextSize(r.getText(), "text"),
                        !r.hasAddBos() || r.getAddBos());
            }
            case TOKEN_IDS -> generation.validator().tokenIds(r.getTokenIds().getIdsList(), "token_ids.ids");
            default -> throw new InvalidRequestException(null, "input is missing: set text or token_ids");
        };
        SamplingParameters s = r.getSampling();
        if (s.getMaxTokens() < 0) {
            throw new InvalidRequestException("sampling.max_tokens", "sampling.max_tokens must be >= 0 (0 = the"
                    + " server's default), got " + s.getMaxTokens());
        }
        if (s.getN() < 0) {
            throw new InvalidRequestException("sampling.n", "sampling.n must be >= 0 (0 = 1), got " + s.getN());
        }
        GenerationParams p = new GenerationParams()
                .temperature(s.hasTemperature() ? (double) s.getTemperature() : null)
                .topK(s.hasTopK() ? s.getTopK() : null)
                .topP(s.hasTopP() ? (double) s.getTopP() : null)
                .minP(s.hasMinP() ? (double) s.getMinP() : null)
                .seed(s.getSeed())
                .maxTokens(s.getMaxTokens() == 0 ? null : s.getMaxTokens())
                .stop(s.getStopSequencesList())
                .stopTokenIds(s.getStopTokenIdsList())
                .ignoreEos(s.getIgnoreEos())
                .presencePenalty((double) s.getPresencePenalty())
                .frequencyPenalty((double) s.getFrequencyPenalty())
                .repetitionPenalty(s.hasRepetitionPenalty() ? (double) s.getRepetitionPenalty() : null)
                .logprobs(s.getLogprobs())
                .topLogprobs(s.getTopLogprobs())
                .n(s.getN() == 0 ? 1 : s.getN());
        return generation.validator().prepare(r.getRequestId(), prompt, p, RequestValidator.GRPC, 0);
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> responses) {
        try {
            generation.validator().checkTextSize(request.getText(), "text");
        } catch (InvalidRequestException e) {
            responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
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
