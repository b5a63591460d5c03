package io.moecluster.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.ModelConfig;
import org.junit.jupiter.api.Test;

class SamplingParamsTest {
    @Test
    void greedyDefaults() {
        SamplingParams p = SamplingParams.greedy(32);
        assertThat(p.isGreedy()).isTrue();
        assertThat(p.temperature()).isZero();
        assertThat(p.topK()).isZero();
        assertThat(p.topP()).isEqualTo(1.0);
        assertThat(p.maxTokens()).isEqualTo(32);
        assertThat(p.stopTokenIds()).isEmpty();
    }

    @Test
    void validationNamesTheField() {
        assertThatThrownBy(() -> new SamplingParams(-0.1, 0, 1, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new SamplingParams(Double.NaN, 0, 1, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new SamplingParams(Double.POSITIVE_INFINITY, 0, 1, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new SamplingParams(1, -1, 1, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("topK");
        assertThatThrownBy(() -> new SamplingParams(1, 0, 0, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("topP");
        assertThatThrownBy(() -> new SamplingParams(1, 0, 1.01, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("topP");
        assertThatThrownBy(() -> new SamplingParams(1, 0, Double.NaN, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("topP");
        assertThatThrownBy(() -> new SamplingParams(1, 0, 1, 0, 0, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxTokens");
        assertThatThrownBy(() -> SamplingParams.greedy(0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxTokens");
        assertThatThrownBy(() -> new SamplingParams(1, 0, 1, 0, 1, new int[] {5, -2}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("stopTokenIds");
    }

    @Test
    void newControlsAreValidatedNamingTheField() {
        SamplingParams p = SamplingParams.greedy(4);
        assertThat(p.hasPenalties()).isFalse();
        assertThat(p.wantsLogprobs()).isFalse();
        assertThat(p.withPenalties(0, 0.5, 1).hasPenalties()).isTrue();
        assertThat(p.withPenalties(0, 0, 1.1).hasPenalties()).isTrue();
        assertThat(p.withLogprobs(0).wantsLogprobs()).isTrue();
        assertThat(p.withSeed(9).withMinP(0.2).withLogprobs(3)).isEqualTo(p.withLogprobs(3).withMinP(0.2).withSeed(9))
                .isNotEqualTo(p);
        assertThatThrownBy(() -> p.withMinP(1.5)).hasMessageContaining("minP");
        assertThatThrownBy(() -> p.withPenalties(Double.NaN, 0, 1)).hasMessageContaining("presencePenalty");
        assertThatThrownBy(() -> p.withPenalties(0, Double.POSITIVE_INFINITY, 1)).hasMessageContaining("frequencyPenalty");
        assertThatThrownBy(() -> p.withPenalties(0, 0, 0)).hasMessageContaining("repetitionPenalty");
        assertThatThrownBy(() -> p.withLogprobs(21)).hasMessageContaining("logprobs");
        assertThatThrownBy(() -> p.withLogprobs(-2)).hasMessageContaining("logprobs");
    }

    @Test
    void stopIdsAreCopiedAndCompareByValue() {
        int[] stops = {7, 9};
        SamplingParams p = new SamplingParams(0.7, 40, 0.95, 1, 10, stops);
        stops[0] = 100;
        assertThat(p.stopTokenIds()).containsExactly(7, 9);
        p.stopTokenIds()[0] = 100;
        assertThat(p.stopTokenIds()).containsExactly(7, 9);
        SamplingParams q = new SamplingParams(0.7, 40, 0.95, 1, 10, new int[] {7, 9});
        assertThat(p).isEqualTo(q).hasSameHashCodeAs(q);
        assertThat(p.toString()).contains("[7, 9]");
    }

    @Test
    void eosAndStopIdsAreStops() {
        ModelConfig cfg = new ModelConfig(Architecture.MIXTRAL, 100, 8, 1, 2, 1, 4, 2, 1, 8, 8, 0, true, false,
                1e-5, 1e6, 64, 0, false, 1, new int[] {2, 3}, 1, new int[0]);
        SamplingParams p = new SamplingParams(1, 0, 1, 0, 5, new int[] {42});
        assertThat(p.isStopToken(2, cfg)).isTrue();
        assertThat(p.isStopToken(3, cfg)).isTrue();
        assertThat(p.isStopToken(42, cfg)).isTrue();
        assertThat(p.isStopToken(1, cfg)).isFalse();
        assertThat(p.isStopToken(41, cfg)).isFalse();
        assertThat(SamplingParams.greedy(1).isStopToken(42, cfg)).isFalse();
    }

    @Test
    void finishReasonApiNames() {
        assertThat(FinishReason.STOP.apiName()).isEqualTo("stop");
        assertThat(FinishReason.LENGTH.apiName()).isEqualTo("length");
    }
}
