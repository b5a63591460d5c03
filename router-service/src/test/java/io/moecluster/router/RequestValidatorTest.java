package io.moecluster.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.model.GenerationDefaults;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.proto.internal.v1.RunRequest;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Defaults from generation_config.json, then the API's; every bad value refused naming the field as the API spells it. */
class RequestValidatorTest {
    static final ModelConfig CONFIG = ModelConfig.load(GoldenModels.dir(GoldenModels.MIXTRAL));
    static final int[] PROMPT = {1, 72, 101};

    static GenerationDefaults defaults(String json) throws Exception {
        return GenerationDefaults.parse(new ObjectMapper().readTree(json), "generation_config.json");
    }

    @Test
    void unsetValuesComeFromGenerationConfigThenFromTheApi() throws Exception {
        GenerationDefaults qwenLike = defaults("{\"do_sample\": true, \"temperature\": 0.7, \"top_p\": 0.8, \"top_k\": 20,"
                + " \"repetition_penalty\": 1.05, \"max_new_tokens\": 40, \"bos_token_id\": 1}");
        RequestValidator v = new RequestValidator(CONFIG, 100, qwenLike);
        RunRequest run = v.prepare(null, PROMPT, new GenerationParams(), RequestValidator.GRPC, 0).run();
        assertThat(run.getTemperature()).isEqualTo(0.7f);
        assertThat(run.getTopP()).isEqualTo(0.8f);
        assertThat(run.getTopK()).isEqualTo(20);
        assertThat(run.getRepetitionPenalty()).isEqualTo(1.05f);
        assertThat(run.getMaxTokens()).isEqualTo(40);
        assertThat(run.getN()).isEqualTo(1);
        assertThat(run.getRequestId()).isNotEmpty();
        // What the request sets wins.
        RunRequest set = v.prepare("r1", PROMPT, new GenerationParams().temperature(0.0).topP(1.0).topK(0)
                .repetitionPenalty(1.0).maxTokens(500), RequestValidator.GRPC, 0).run();
        assertThat(set.getTemperature()).isZero();
        assertThat(set.getTopK()).isZero();
        assertThat(set.getRepetitionPenalty()).isEqualTo(1f);
        assertThat(set.getMaxTokens()).as("clamped to the room left in max-seq-len").isEqualTo(100 - PROMPT.length);
        assertThat(set.getRequestId()).isEqualTo("r1");

        // do_sample false is greedy whatever the temperature; no file at all leaves the API's defaults.
        GenerationDefaults greedy = defaults("{\"do_sample\": false, \"temperature\": 0.6}");
        assertThat(new RequestValidator(CONFIG, 100, greedy).prepare(null, PROMPT, new GenerationParams(),
                RequestValidator.GRPC, 1).run().getTemperature()).isZero();
        RunRequest none = new RequestValidator(CONFIG, 1000, GenerationDefaults.NONE).prepare(null, PROMPT,
                new GenerationParams(), RequestValidator.GRPC, 1).run();
        assertThat(none.getTemperature()).isEqualTo(1f);
        assertThat(none.getTopP()).isEqualTo(1f);
        assertThat(none.getRepetitionPenalty()).isEqualTo(1f);
        assertThat(none.getMaxTokens()).isEqualTo(RequestValidator.DEFAULT_MAX_TOKENS);
        assertThat(GenerationDefaults.load(GoldenModels.dir(GoldenModels.MIXTRAL))).isEqualTo(GenerationDefaults.NONE);
    }

    @Test
    void badValuesAreRefusedNamingTheFieldAsTheApiSpellsIt() {
        RequestValidator v = new RequestValidator(CONFIG, 100, GenerationDefaults.NONE);
        RequestValidator.FieldNames openAi = f -> f.equals("stop_sequences") ? "stop" : f;
        assertRefused(v, new GenerationParams().temperature(-1.0), openAi, "temperature");
        assertRefused(v, new GenerationParams().topP(1.5), RequestValidator.GRPC, "sampling.top_p");
        assertRefused(v, new GenerationParams().minP(-0.1), openAi, "min_p");
        assertRefused(v, new GenerationParams().presencePenalty(2.5), openAi, "presence_penalty");
        assertRefused(v, new GenerationParams().frequencyPenalty(-3.0), openAi, "frequency_penalty");
        assertRefused(v, new GenerationParams().repetitionPenalty(0.0), openAi, "repetition_penalty");
        assertRefused(v, new GenerationParams().maxTokens(0), openAi, "max_tokens");
        assertRefused(v, new GenerationParams().stop(List.of("ok", "")), openAi, "stop");
        assertRefused(v, new GenerationParams().stopTokenIds(List.of(3, 999)), openAi, "stop_token_ids");
        assertRefused(v, new GenerationParams().logprobs(true).topLogprobs(21), openAi, "top_logprobs");
        assertRefused(v, new GenerationParams().topLogprobs(2), openAi, "top_logprobs");
        assertRefused(v, new GenerationParams().n(0), openAi, "n");
        assertThatThrownBy(() -> v.tokenIds(List.of(1, 259), "prompt"))
                .isInstanceOfSatisfying(InvalidRequestException.class, e -> {
                    assertThat(e.param()).isEqualTo("prompt");
                    assertThat(e.getMessage()).contains("prompt[1] = 259 is outside the vocabulary [0, 259)");
                });
    }

    static void assertRefused(RequestValidator v, GenerationParams p, RequestValidator.FieldNames names, String param) {
        assertThatThrownBy(() -> v.prepare(null, PROMPT, p, names, 1))
                .isInstanceOfSatisfying(InvalidRequestException.class, e -> {
                    assertThat(e.param()).isEqualTo(param);
                    assertThat(e.getMessage()).startsWith(param);
                });
    }
}
