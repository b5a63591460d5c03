package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class Bf16Test {
    @Test
    void roundsToNearestEven() {
        assertThat(Bf16.fromFloat(1.0f)).isEqualTo((short) 0x3f80);
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
        assertThat(Bf16.fromFloat(1.0f + 0x1p-8f)).isEqualTo((short) 0x3f80);
        // 1 + 3 * 2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to even.
        assertThat(Bf16.fromFloat(1.0f + 3 * 0x1p-8f)).isEqualTo((short) 0x3f82);
        assertThat(Bf16.toFloat(Bf16.fromFloat(-2.5f))).isEqualTo(-2.5f);
        assertThat(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(Float.NaN)))).isTrue();
        assertThat(Bf16.toFloat(Bf16.fromFloat(Float.POSITIVE_INFINITY))).isEqualTo(Float.POSITIVE_INFINITY);
    }
}
