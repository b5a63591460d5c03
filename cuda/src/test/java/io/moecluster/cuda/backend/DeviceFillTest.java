package io.moecluster.cuda.backend;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class DeviceFillTest {
    @Test
    void valuesAreUniformInTheScaledRangeAndDeterministic() {
        double sum = 0;
        float min = Float.MAX_VALUE;
        float max = -Float.MAX_VALUE;
        for (long i = 0; i < 100_000; i++) {
            float v = DeviceFill.value(7, i, 0.03125f);
            sum += v;
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        assertThat(min).isGreaterThanOrEqualTo(-0.03125f);
        assertThat(max).isLessThan(0.03125f);
        assertThat(sum / 100_000).isBetween(-3e-4, 3e-4);
        assertThat(DeviceFill.bf16(7, 12345, 0.5f)).isEqualTo(DeviceFill.bf16(7, 12345, 0.5f));
        assertThat(DeviceFill.bf16(7, 12345, 0.5f)).isNotEqualTo(DeviceFill.bf16(8, 12345, 0.5f));
        // splitmix64's published first output for state 0 (after one increment)
        assertThat(DeviceFill.splitmix64(0)).isEqualTo(0xe220a8397b1dcdafL);
    }
}
