package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** FP8 E4M3 against the OCP specification, every bit pattern, in the scalar and the vector decode. */
class Fp8E4m3Test {
    /**
     * The specification, in double, written out independently of the bit trick: sign s, exponent
     * field e (bias 7), mantissa field m; e = 0 is subnormal (m/8 * 2^-6); e = 15 with m = 7 is NaN
     * (no infinities); everything else (1 + m/8) * 2^(e-7).
     */
    static double spec(int bits) {
        int s = (bits >> 7) & 1;
        int e = (bits >> 3) & 0xf;
        int m = bits & 7;
        if (e == 15 && m == 7) {
            return Double.NaN;
        }
        double magnitude = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
        return s == 1 ? -magnitude : magnitude;
    }

    @Test
    void everyBitPatternDecodesAsTheSpecificationSays() {
        int nans = 0;
        for (int b = 0; b < 256; b++) {
            double expected = spec(b);
            float got = Fp8E4m3.toFloat(b);
            if (Double.isNaN(expected)) {
                assertThat(got).as("0x%02x", b).isNaN();
                nans++;
            } else {
                assertThat((double) got).as("0x%02x", b).isEqualTo(expected);
                // Signed zero: 0x80 is -0.
                assertThat(Math.copySign(1f, got)).as("sign of 0x%02x", b).isEqualTo((b & 0x80) != 0 ? -1f : 1f);
            }
        }
        assertThat(nans).as("0x7f and 0xff").isEqualTo(2);
        assertThat(Fp8E4m3.toFloat(0x7e)).isEqualTo(448f);
        assertThat(Fp8E4m3.toFloat(0x01)).isEqualTo(0x1p-9f);
        assertThat(Fp8E4m3.toFloat(0x08)).isEqualTo(0x1p-6f);
    }

    /**
     * The kernels' vector decode against the scalar one, at this JVM's width, cold and compiled: the
     * 254 finite patterns bit for bit; the two NaN encodings come out as ±480 there, which is why a
     * matrix holding them runs the scalar loops (next test).
     */
    @Test
    void vectorDecodeMatchesTheScalarDecodeForEveryBitPattern() {
        if (Kernels.SCALAR) {
            return; // no vectors: the kernels decode with Fp8E4m3.toFloat
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(256 + 3).asSlice(3); // off the allocation's alignment
            for (int b = 0; b < 256; b++) {
                seg.set(ValueLayout.JAVA_BYTE, b, (byte) b);
            }
            for (int pass = 0; pass < 2000; pass++) {
                for (int i = 0; i < 256; i += Kernels.LANES) {
                    FloatVector v = Fp8Matrix.load(seg, i);
                    for (int l = 0; l < Kernels.LANES; l++) {
                        float got = v.lane(l);
                        float expected = Fp8E4m3.toFloat(i + l);
                        if (Float.isNaN(expected)) {
                            expected = ((i + l) & 0x80) != 0 ? -480f : 480f;
                        }
                        if (Float.floatToRawIntBits(got) != Float.floatToRawIntBits(expected)) {
                            assertThat(got).as("0x%02x, pass %d", i + l, pass).isEqualTo(expected);
                        }
                    }
                }
            }
        }
    }

    /**
     * Every kernel reads every bit pattern as the specification says: a matrix of all 256 bytes (so
     * holding the NaN encodings) is found out by the load-time scan and runs the scalar loops; its
     * row copies and one-hot dot products give each value, NaN included.
     */
    @Test
    void aMatrixHoldingNanEncodingsReadsThemAsNan() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(256);
            for (int b = 0; b < 256; b++) {
                data.set(ValueLayout.JAVA_BYTE, b, (byte) b);
            }
            MemorySegment scales = arena.allocate(4);
            scales.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 1f);
            BlockScales s = new BlockScales(scales, 16, 16);
            Fp8Matrix m = (Fp8Matrix) WeightMatrix.of("all", data, DType.F8_E4M3, 16, 16,
                    (n, r, c) -> s);
            assertThat(m.hasNan()).isTrue();
            MemorySegment row = arena.allocate(16 * 4);
            MemorySegment x = arena.allocate(16 * 4);
            MemorySegment y = arena.allocate(16 * 4);
            for (int r = 0; r < 16; r++) {
                m.copyRowTo(r, row, 0);
                for (int c = 0; c < 16; c++) {
                    float expected = Fp8E4m3.toFloat(r * 16 + c);
                    float got = row.getAtIndex(ValueLayout.JAVA_FLOAT, c);
                    if (Float.isNaN(expected)) {
                        assertThat(got).as("0x%02x", r * 16 + c).isNaN();
                    } else {
                        assertThat(got).as("0x%02x", r * 16 + c).isEqualTo(expected);
                    }
                }
            }
            for (int c = 0; c < 16; c++) {
                x.fill((byte) 0);
                x.setAtIndex(ValueLayout.JAVA_FLOAT, c, 1f);
                m.applyRows(x, 0, y, 0, 1, 0, 16);
                for (int r = 0; r < 16; r++) {
                    // Rows 7 and 15 end in 0x7f and 0xff: a NaN weight makes the whole dot NaN (NaN * 0).
                    float expected = r % 8 == 7 ? Float.NaN : Fp8E4m3.toFloat(r * 16 + c);
                    float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                    if (Float.isNaN(expected)) {
                        assertThat(got).as("0x%02x", r * 16 + c).isNaN();
                    } else {
                        assertThat(got).as("0x%02x", r * 16 + c).isEqualTo(expected == 0 ? 0f : expected);
                    }
                }
            }
            MemorySegment finite = arena.allocate(256);
            finite.fill((byte) 0x7e);
            assertThat(Fp8Matrix.containsNan(finite)).isFalse();
            for (int at : new int[] {0, 100, 255}) {
                finite.set(ValueLayout.JAVA_BYTE, at, (byte) 0xff);
                assertThat(Fp8Matrix.containsNan(finite)).as("NaN at %d", at).isTrue();
                finite.set(ValueLayout.JAVA_BYTE, at, (byte) 0x7e);
            }
        }
    }

    /** Encoding: every value round-trips, and in between the nearest wins with ties to the even mantissa. */
    @Test
    void encodingRoundsToNearestEvenAndSaturates() {
        for (int b = 0; b < 256; b++) {
            float v = Fp8E4m3.toFloat(b);
            if (Float.isNaN(v)) {
                assertThat(Fp8E4m3.toFloat(Fp8E4m3.fromFloat(v))).isNaN();
                continue;
            }
            assertThat(Fp8E4m3.fromFloat(v) & 0xff).as("round trip of 0x%02x", b).isEqualTo(b);
        }
        // Between 1 (0x38) and 1.125 (0x39): the midpoint goes to the even mantissa, 1.
        assertThat(Fp8E4m3.fromFloat(1.0625f)).isEqualTo((byte) 0x38);
        assertThat(Fp8E4m3.fromFloat(1.0626f)).isEqualTo((byte) 0x39);
        // Between 1.125 (0x39) and 1.25 (0x3a): the midpoint goes to 0x3a.
        assertThat(Fp8E4m3.fromFloat(1.1875f)).isEqualTo((byte) 0x3a);
        // Subnormals: 2.5 * 2^-9 is a tie between 2 and 3 steps, going to 2; 7.5 steps carries to the normal 2^-6.
        assertThat(Fp8E4m3.fromFloat(2.5f * 0x1p-9f)).isEqualTo((byte) 0x02);
        assertThat(Fp8E4m3.fromFloat(7.6f * 0x1p-9f)).isEqualTo((byte) 0x08);
        // Nearest in general, against the table.
        for (float f = -500f; f <= 500f; f += 0.37f) {
            float q = Fp8E4m3.toFloat(Fp8E4m3.fromFloat(f));
            float clamped = Math.max(-448f, Math.min(448f, f));
            for (int b = 0; b < 256; b++) {
                float c = Fp8E4m3.toFloat(b);
                if (!Float.isNaN(c)) {
                    assertThat(Math.abs(q - clamped)).as("%s encodes to %s, but %s is nearer", f, q, c)
                            .isLessThanOrEqualTo(Math.abs(c - clamped));
                }
            }
        }
        assertThat(Fp8E4m3.fromFloat(1e6f)).isEqualTo((byte) 0x7e);
        assertThat(Fp8E4m3.fromFloat(-1e6f)).isEqualTo((byte) 0xfe);
    }
}
