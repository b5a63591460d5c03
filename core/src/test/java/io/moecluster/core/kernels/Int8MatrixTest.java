package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The int8 block format: its quantizer and its row kernels against plain double-precision loops. */
class Int8MatrixTest {
    /**
     * The kernels sum f32 products of the dequantised weights (each {@code q * scale} rounded once,
     * exactly what the reference uses) in a different order than the double reference: relative
     * error of order sqrt(cols) * 2^-24 of the sum of |terms|, well below 1e-5 per sqrt(cols).
     */
    private static final double TOLERANCE = 1e-5;

    /** A random [rows, cols] int8 matrix with random block scales, and its weights as the reference reads them. */
    private record Random8(WeightMatrix w, float[] weights) {
    }

    private static Random8 random(Arena arena, int rows, int cols, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int blocks = Int8Matrix.blocks(cols);
        MemorySegment data = arena.allocate((long) rows * cols + 1).asSlice(1); // unaligned on purpose
        MemorySegment scales = arena.allocate((long) rows * blocks * 4);
        float[] weights = new float[rows * cols];
        for (int i = 0; i < rows * blocks; i++) {
            scales.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (rnd.nextDouble() * 0.02 + 1e-4));
        }
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                byte q = (byte) (rnd.nextInt(255) - 127);
                data.set(ValueLayout.JAVA_BYTE, (long) r * cols + c, q);
                weights[r * cols + c] = q * scales.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (long) r * blocks + c / 32);
            }
        }
        WeightMatrix w = WeightMatrix.of("w", data, DType.I8, rows, cols, (name, r, c) -> new BlockScales(scales, 1, 32));
        return new Random8(w, weights);
    }

    @ParameterizedTest(name = "[{0}x{1}] batch {2}")
    @CsvSource({"7, 5, 1", "33, 64, 3", "40, 100, 9", "17, 257, 5", "9, 61, 6", "5, 1021, 4", "12, 1024, 8", "64, 96, 2",
        // Whole blocks, batch over 4 and an odd row count: the two-row tiles (from 5 tokens: 4+1, 4+2,
        // 4+2+1, 4+4+1, 4+4+2, 4+4+2+1) and a lone row.
        "13, 320, 9", "7, 64, 4", "6, 1024, 6", "6, 1024, 10", "7, 64, 11", "7, 64, 5", "7, 64, 7",
        // One token (decode at a batch of one), whole blocks.
        "11, 128, 1"})
    void matchesDoublePrecisionReferenceAndIsBatchInvariant(int rows, int cols, int batch) {
        SplittableRandom rnd = new SplittableRandom(rows * 131L + cols);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2, "test")) {
            Random8 m = random(arena, rows, cols, rows * 7L + cols);
            assertThat(m.w()).isInstanceOf(Int8Matrix.class);
            assertThat(m.w().byteSize()).isEqualTo((long) rows * cols + (long) rows * Int8Matrix.blocks(cols) * 4);
            MemorySegment x = arena.allocate((long) batch * cols * 4);
            for (int i = 0; i < batch * cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextDouble() * 2 - 1));
            }
            MemorySegment y = arena.allocate((long) batch * rows * 4);
            new MatMul(pool).apply(m.w(), x, y, batch);
            MemorySegment single = arena.allocate((long) rows * 4);
            for (int b = 0; b < batch; b++) {
                MatMul.rows(m.w(), x, b, single, 0, 1, 0, rows);
                for (int r = 0; r < rows; r++) {
                    double ref = 0;
                    double mag = 0;
                    for (int k = 0; k < cols; k++) {
                        double t = (double) m.weights()[r * cols + k] * x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) b * cols + k);
                        ref += t;
                        mag += Math.abs(t);
                    }
                    float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) b * rows + r);
                    assertThat(Math.abs(got - ref)).as("row %d token %d", r, b)
                            .isLessThanOrEqualTo(TOLERANCE * Math.max(1.0, mag));
                    assertThat(Float.floatToRawIntBits(single.getAtIndex(ValueLayout.JAVA_FLOAT, r)))
                            .as("token %d alone must equal token %d in a batch of %d", b, b, batch)
                            .isEqualTo(Float.floatToRawIntBits(got));
                }
            }
        }
    }

    @Test
    void copyRowGivesTheDequantisedWeightsExactly() {
        try (Arena arena = Arena.ofConfined()) {
            Random8 m = random(arena, 3, 77, 3);
            MemorySegment out = arena.allocate(77 * 4);
            for (int r = 0; r < 3; r++) {
                m.w().copyRowTo(r, out, 0);
                for (int c = 0; c < 77; c++) {
                    assertThat(out.getAtIndex(ValueLayout.JAVA_FLOAT, c)).as("[%d, %d]", r, c).isEqualTo(m.weights()[r * 77 + c]);
                }
            }
        }
    }

    @Test
    void quantizerIsSymmetricPerBlockAndWithinHalfAStep() {
        SplittableRandom rnd = new SplittableRandom(9);
        int cols = 70; // two whole blocks and a partial one
        float[] w = new float[cols];
        for (int i = 0; i < cols; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        for (int i = 32; i < 64; i++) {
            w[i] = 0f; // an all-zero block
        }
        float[] q = new float[cols];
        float[] scales = new float[3];
        assertThat(Int8Quantizer.quantizeRow(w, cols, q, scales)).isEqualTo(-1);
        assertThat(scales[1]).isZero();
        for (int i = 0; i < cols; i++) {
            float s = scales[i / 32];
            assertThat(q[i]).isEqualTo((float) Math.rint(q[i])).isBetween(-127f, 127f);
            assertThat((double) Math.abs(q[i] * s - w[i])).as("weight %d", i).isLessThanOrEqualTo(s / 2 * (1 + 1e-6));
        }
        float amax = 0;
        for (int i = 64; i < cols; i++) {
            amax = Math.max(amax, Math.abs(w[i]));
        }
        assertThat(scales[2]).isEqualTo(amax / 127f);
        w[40] = Float.NaN;
        assertThat(Int8Quantizer.quantizeRow(w, cols, q, scales)).isEqualTo(40);
    }

    @Test
    void wrongScalesOrBlocksAreRefusedNamingTheTensor() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(4 * 64);
            MemorySegment scales = arena.allocate(4 * 2 * 4);
            MemorySegment tooFew = arena.allocate(4 * 4);
            assertThatThrownBy(() -> WeightMatrix.of("layers.0.w", data, DType.I8, 4, 64, (n, r, c) -> new BlockScales(tooFew, 1, 32)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("layers.0.w")
                    .hasMessageContaining("expected [4, 2]");
            assertThatThrownBy(() -> WeightMatrix.of("layers.0.w", data, DType.I8, 4, 64, (n, r, c) -> new BlockScales(scales, 1, 64)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("layers.0.w")
                    .hasMessageContaining("blocks of 1x32");
            assertThatThrownBy(() -> WeightMatrix.of("layers.0.w", data, DType.I8, 4, 64))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("layers.0.w");
            assertThat(WeightMatrix.of("ok", data, DType.I8, 4, 64, (n, r, c) -> new BlockScales(scales, 1, 32)).format())
                    .isEqualTo("I8");
        }
    }
}
