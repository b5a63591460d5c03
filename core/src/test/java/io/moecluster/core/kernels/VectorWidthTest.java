package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VectorWidthTest {
    @Test
    void unsetMeansTheCpusPreferredWidth() {
        assertThat(VectorWidth.parse(null, 512, 512)).isEqualTo(new VectorWidth(512, false));
        assertThat(VectorWidth.parse(null, 256, 512)).isEqualTo(new VectorWidth(256, false));
        // No 128-bit vectors at all: the scalar loops, not a crash on a 32-bit short species.
        assertThat(VectorWidth.parse(null, 64, 64).scalar()).isTrue();
    }

    @Test
    void acceptsZeroAndEveryWidthUpToTheCpusWidest() {
        assertThat(VectorWidth.parse("0", 512, 512)).isEqualTo(new VectorWidth(0, true));
        assertThat(VectorWidth.parse("0", 512, 512).scalar()).isTrue();
        assertThat(VectorWidth.parse("128", 512, 512)).isEqualTo(new VectorWidth(128, true));
        assertThat(VectorWidth.parse("256", 512, 512)).isEqualTo(new VectorWidth(256, true));
        assertThat(VectorWidth.parse(" 512 ", 512, 512)).isEqualTo(new VectorWidth(512, true));
        assertThat(VectorWidth.parse("256", 256, 256)).isEqualTo(new VectorWidth(256, true));
        assertThat(VectorWidth.parse("0", 128, 128).scalar()).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "abc", "256bits", "1.5", "64", "-128", "384", "1024", "32"})
    void rejectsWhatIsNotAWidthNamingThePropertyAndTheAllowedValues(String value) {
        assertThatThrownBy(() -> VectorWidth.parse(value, 512, 512))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("moe.vectorBits=" + value + " is not a ")
                .hasMessageContaining("allowed values: 0 (scalar), 128, 256, 512");
    }

    @Test
    void rejectsAWidthAboveTheCpusWidest() {
        assertThatThrownBy(() -> VectorWidth.parse("512", 256, 256))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("moe.vectorBits=512 is wider than the widest vectors of this CPU and JVM (256 bits")
                .hasMessageContaining("allowed values: 0 (scalar), 128, 256 (")
                .hasMessageNotContaining("512 (");
        assertThatThrownBy(() -> VectorWidth.parse("256", 128, 128))
                .hasMessageContaining("allowed values: 0 (scalar), 128 (bits, up to 128 on this CPU");
    }

    @Test
    void describesTheWidthAndWhetherItWasOverridden() {
        assertThat(new VectorWidth(512, false).describe()).isEqualTo("512-bit vectors (16 f32 lanes, the CPU's preferred width)");
        assertThat(new VectorWidth(256, true).describe()).isEqualTo("256-bit vectors (8 f32 lanes, set by moe.vectorBits=256)");
        assertThat(new VectorWidth(0, true).describe()).isEqualTo("scalar (moe.vectorBits=0)");
    }

    @Test
    void aRecordOfAWidthThatIsNoneIsRefused() {
        assertThatThrownBy(() -> new VectorWidth(384, true)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new VectorWidth(64, false)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void speciesHasTheWidth() {
        for (int bits : new int[] {128, 256, 512}) {
            if (bits <= VectorWidth.maxBits()) {
                assertThat(new VectorWidth(bits, true).species().vectorBitSize()).isEqualTo(bits);
            }
        }
        assertThat(VectorWidth.preferredBits()).isLessThanOrEqualTo(VectorWidth.maxBits());
    }

    /** The width the kernels of this JVM run at is the property's (the surefire forks set it). */
    @Test
    void kernelsRunAtThePropertysWidth() {
        String property = System.getProperty(VectorWidth.PROPERTY);
        assertThat(Kernels.WIDTH).isEqualTo(VectorWidth.fromSystemProperty());
        if (property == null) {
            assertThat(Kernels.WIDTH.overridden()).isFalse();
            assertThat(Kernels.F.vectorBitSize()).isEqualTo(VectorWidth.preferredBits());
            assertThat(Kernels.describe()).endsWith("the CPU's preferred width)");
        } else {
            int bits = Integer.parseInt(property.strip());
            assertThat(Kernels.WIDTH.bits()).isEqualTo(bits);
            assertThat(Kernels.SCALAR).isEqualTo(bits == 0);
            if (bits == 0) {
                assertThat(Kernels.describe()).isEqualTo("scalar (moe.vectorBits=0)");
            } else {
                assertThat(Kernels.F.vectorBitSize()).isEqualTo(bits);
                assertThat(Kernels.LANES).isEqualTo(bits / 32);
                assertThat(Kernels.describe()).startsWith(bits + "-bit vectors").contains("set by moe.vectorBits=" + bits);
            }
        }
    }
}
