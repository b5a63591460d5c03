package io.moecluster.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class AutoscalePolicyTest {
    static final double[] UNIFORM = {10, 10, 10, 10, 10, 10, 10, 10};
    static final double[] EXPERT_3_HOT = {5, 5, 5, 40, 5, 5, 5, 5};
    static final int[] ONE_EACH = {1, 1, 1, 1, 1, 1, 1, 1};

    @Test
    void addsAReplicaOnlyAfterTheShareStaysHighForTheSustainedSamples() {
        AutoscalePolicy p = new AutoscalePolicy(0.25, 3, 3, 1);
        assertThat(p.observe(UNIFORM, ONE_EACH)).isEqualTo(-1);
        assertThat(p.observe(EXPERT_3_HOT, ONE_EACH)).isEqualTo(-1);
        assertThat(p.observe(EXPERT_3_HOT, ONE_EACH)).isEqualTo(-1);
        assertThat(p.observe(EXPERT_3_HOT, ONE_EACH)).as("third hot sample in a row").isEqualTo(3);
        // The count starts again after a decision, and a cool sample resets it.
        assertThat(p.observe(EXPERT_3_HOT, new int[] {1, 1, 1, 2, 1, 1, 1, 1})).isEqualTo(-1);
        assertThat(p.observe(UNIFORM, new int[] {1, 1, 1, 2, 1, 1, 1, 1})).isEqualTo(-1);
        assertThat(p.observe(EXPERT_3_HOT, new int[] {1, 1, 1, 2, 1, 1, 1, 1})).isEqualTo(-1);
    }

    @Test
    void respectsTheReplicaCapAndIgnoresAnIdleCluster() {
        AutoscalePolicy p = new AutoscalePolicy(0.25, 1, 2, 1);
        assertThat(p.observe(EXPERT_3_HOT, new int[] {1, 1, 1, 2, 1, 1, 1, 1})).isEqualTo(-1);
        assertThat(p.observe(new double[] {0, 0, 0, 0.5, 0, 0, 0, 0}, ONE_EACH)).as("idle").isEqualTo(-1);
        assertThat(p.observe(new double[] {1, 1, 1, 30, 1, 1, 1, 40}, ONE_EACH)).as("the hottest first").isEqualTo(7);
    }

    @Test
    void refusesSettingsThatMakeNoSense() {
        assertThatThrownBy(() -> new AutoscalePolicy(1.5, 1, 2, 1)).hasMessageContaining("--threshold");
        assertThatThrownBy(() -> new AutoscalePolicy(0.2, 0, 2, 1)).hasMessageContaining("--sustain");
    }
}
