package io.moecluster.router;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.InvalidProtocolBufferException;
import io.moecluster.attention.InvalidFieldException;
import io.moecluster.attention.RunRequestValidator;
import io.moecluster.core.model.GenerationDefaults;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.proto.internal.v1.RunRequest;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.SamplingParameters;
import java.nio.file.Path;
import java.util.List;

/**
 * Fuzz tests of the public API's request validation (Jazzer): what {@code Generate} and
 * {@code GenerateStream} do with a request before anything is admitted or run
 * ({@link InferenceService#prepare}). A request is either refused with an
 * {@link InvalidRequestException} naming the problem (INVALID_ARGUMENT), and then nothing is
 * computed, or it is prepared into a RunRequest that the attention service's own validation
 * accepts as is; no other exception escapes. Two forms: requests built field by field from the
 * fuzzer's data (every field, NaN and infinite floats, negative and huge ints, odd text), and raw
 * bytes parsed as gRPC parses a request.
 *
 * <p>{@code ./mvn25 verify} runs the regression inputs under
 * {@code src/test/resources/io/moecluster/router/RequestValidationFuzzTestInputs/};
 * {@code scripts/fuzz.sh} fuzzes each target for 10^6 inputs.
 */
class RequestValidationFuzzTest {
    static final int RUNS = 1_000_000;
    static final int MAX_SEQ_LEN = 256;
    private static final InferenceService SERVICE;
    private static final RunRequestValidator ATTENTION;

    static {
        Path model = GoldenModels.dir(GoldenModels.MIXTRAL);
        ModelConfig config = ModelConfig.load(model);
        // Lives as long as the test JVM: one tokenizer for every input. The attention replica is never
        // called (the channel connects lazily): prepare() runs before anything is admitted.
        TextTokenizer tokenizer = TextTokenizer.load(model, config.bosTokenId());
        AdmissionControl admission = new AdmissionControl(1);
        SERVICE = new InferenceService(new GenerationService(config, tokenizer, new AttentionPool(List.of(GrpcAttentionClient.connect("127.0.0.1:9"))), admission,
                new RequestValidator(config, MAX_SEQ_LEN, GenerationDefaults.NONE), RequestMetrics.noop(admission)));
        ATTENTION = new RunRequestValidator(config, MAX_SEQ_LEN);
    }

    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void generateRequest(FuzzedDataProvider data) {
        GenerateRequest.Builder r = GenerateRequest.newBuilder();
        switch (data.consumeInt(0, 2)) {
            case 0 -> r.setText(data.consumeString(200));
            case 1 -> {
                int n = data.consumeInt(0, 300);
                for (int i = 0; i < n && data.remainingBytes() > 0; i++) {
                    r.getTokenIdsBuilder().addIds(data.consumeBoolean() ? data.consumeInt(0, 40) : data.consumeInt());
                }
                if (n == 0) {
                    r.getTokenIdsBuilder();
                }
            }
            default -> {
                // no input at all
            }
        }
        if (data.consumeBoolean()) {
            r.setAddBos(data.consumeBoolean());
        }
        if (data.consumeBoolean()) {
            r.setRequestId(data.consumeString(16));
        }
        SamplingParameters.Builder s = r.getSamplingBuilder();
        if (data.consumeBoolean()) {
            s.setTemperature(data.consumeFloat());
        }
        if (data.consumeBoolean()) {
            s.setTopK(data.consumeInt());
        }
        if (data.consumeBoolean()) {
            s.setTopP(data.consumeFloat());
        }
        if (data.consumeBoolean()) {
            s.setMinP(data.consumeFloat());
        }
        if (data.consumeBoolean()) {
            s.setRepetitionPenalty(data.consumeFloat());
        }
        s.setSeed(data.consumeLong()).setMaxTokens(data.consumeBoolean() ? data.consumeInt(-2, 300) : data.consumeInt())
                .setIgnoreEos(data.consumeBoolean()).setPresencePenalty(data.consumeFloat())
                .setFrequencyPenalty(data.consumeFloat()).setLogprobs(data.consumeBoolean())
                .setTopLogprobs(data.consumeInt(-2, 25)).setN(data.consumeBoolean() ? data.consumeInt(-2, 8) : data.consumeInt());
        int stops = data.consumeInt(0, 3);
        for (int i = 0; i < stops; i++) {
            s.addStopSequences(data.consumeString(8));
        }
        int stopIds = data.consumeInt(0, 3);
        for (int i = 0; i < stopIds; i++) {
            s.addStopTokenIds(data.consumeInt());
        }
        check(r.build());
    }

    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void generateRequestBytes(byte[] data) {
        GenerateRequest r;
        try {
            r = GenerateRequest.parseFrom(data);
        } catch (InvalidProtocolBufferException unreadable) {
            return; // gRPC's marshaller refuses it before the service sees it
        }
        check(r);
    }

    private static void check(GenerateRequest request) {
        PreparedRequest prepared;
        try {
            prepared = SERVICE.prepare(request);
        } catch (InvalidRequestException e) {
            if (e.getMessage() == null || e.getMessage().isBlank()) {
                throw new AssertionError("a refusal must say why", e);
            }
            return;
        }
        RunRequest run = prepared.run();
        try {
            ATTENTION.prompt(run);
            ATTENTION.sampling(run);
        } catch (InvalidFieldException e) {
            throw new AssertionError("the router accepted what the attention service refuses: " + e.getMessage()
                    + " (request " + request + ")", e);
        }
        if (run.getN() < 1 || run.getMaxTokens() < 1 || run.getPromptTokenIdsCount() + run.getMaxTokens() > MAX_SEQ_LEN) {
            throw new AssertionError("prepared out of bounds: n " + run.getN() + ", max_tokens " + run.getMaxTokens()
                    + ", prompt " + run.getPromptTokenIdsCount());
        }
    }
}
