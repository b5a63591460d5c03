package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The FP8 block format's kernels against double precision over the dequantised weights
 * ({@code fp8 * scale}), with partial edge blocks in both directions, at this JVM's vector width.
 * Tolerance: a dot product of n f32 terms summed in f32 is within about n * 2^-24 of the exact
 * sum of |w x|; the bound used, 1e-6 * n * Σ|w x|, is an order above that.
 */
class Fp8MatrixTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** A random FP8 matrix with random positive block scales; {@code exact} gets fp8 * scale in double. */
    static WeightMatrix random(Arena arena, int rows, int cols, int bh, int bw, long seed, double[] exact) {
        SplittableRandom rnd = new SplittableRandom(seed);
        MemorySegment data = arena.allocate((long) rows * cols + 1).asSlice(1); // unaligned, as mappings may be
        int sr = (rows + bh - 1) / bh;
        int sc = (cols + bw - 1) / bw;
        MemorySegment scales = arena.allocate((long) sr * sc * 4);
        for (int i = 0; i < sr * sc; i++) {
            scales.setAtIndex(F32, i, (float) (0.5e-3 + rnd.nextDouble() * 1e-3));
        }
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int b;
                do {
                    b = rnd.nextInt(256);
                } while ((b & 0x7f) == 0x7f); // no NaN weights in a matrix meant for sums
                data.set(ValueLayout.JAVA_BYTE, (long) r * cols + c, (byte) b);
                exact[r * cols + c] = Fp8E4m3Test.spec(b) * scales.getAtIndex(F32, (long) (r / bh) * sc + c / bw);
            }
        }
        BlockScales s = new BlockScales(scales, bh, bw);
        return WeightMatrix.of("w", data, DType.F8_E4M3, rows, cols, (n, r, c) -> s);
    }

    @ParameterizedTest(name = "{0}x{1} in {2}x{3} blocks")
    @CsvSource({
        "40, 72, 16, 16",     // 2.5 x 4.5 blocks: partial edge blocks both ways
        "24, 64, 16, 16",     // the golden model's kv_b_proj shape class: 1.5 row blocks
        "130, 200, 128, 128", // 576-style partial blocks at the real model's block size
        "9, 61, 16, 16",      // a scalar tail inside the last, partial block
        "12, 40, 8, 8"        // blocks narrower than 512-bit vectors: the scalar loops
    })
    void rowKernelMatchesDoublePrecisionAtEveryBatchSize(int rows, int cols, int bh, int bw) {
        try (Arena arena = Arena.ofConfined()) {
            double[] w = new double[rows * cols];
            WeightMatrix m = random(arena, rows, cols, bh, bw, rows * 31L + cols, w);
            assertThat(m).isInstanceOf(Fp8Matrix.class);
            assertThat(m.byteSize()).isEqualTo((long) rows * cols
                    + 4L * ((rows + bh - 1) / bh) * ((cols + bw - 1) / bw));
            int maxBatch = 9;
            SplittableRandom rnd = new SplittableRandom(7);
            MemorySegment x = arena.allocate((long) maxBatch * cols * 4);
            for (int i = 0; i < maxBatch * cols; i++) {
                x.setAtIndex(F32, i, (float) rnd.nextGaussian());
            }
            MemorySegment alone = arena.allocate((long) maxBatch * rows * 4);
            for (int b = 0; b < maxBatch; b++) {
                m.applyRows(x, b, alone, b, 1, 0, rows);
            }
            for (int batch = 1; batch <= maxBatch; batch++) {
                MemorySegment y = arena.allocate((long) batch * rows * 4);
                m.applyRows(x, 0, y, 0, batch, 0, rows);
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < rows; r++) {
                        double exact = 0;
                        double abs = 0;
                        for (int c = 0; c < cols; c++) {
                            double p = w[r * cols + c] * x.getAtIndex(F32, (long) b * cols + c);
                            exact += p;
                            abs += Math.abs(p);
                        }
                        float got = y.getAtIndex(F32, (long) b * rows + r);
                        assertThat((double) got).as("row %d token %d of %d", r, b, batch)
                                .isCloseTo(exact, Offset.offset(1e-6 * cols * abs + 1e-30));
                        // A token's result does not depend on its batch-mates (dot4 and dot1 sum alike).
                        assertThat(Float.floatToRawIntBits(got)).as("row %d token %d: batch %d vs alone", r, b, batch)
                                .isEqualTo(Float.floatToRawIntBits(alone.getAtIndex(F32, (long) b * rows + r)));
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}x{1} in {2}x{3} blocks")
    @CsvSource({"40, 72, 16, 16", "9, 61, 16, 16", "12, 40, 8, 8"})
    void rowCopyIsFp8TimesItsBlockScaleRoundedOnce(int rows, int cols, int bh, int bw) {
        try (Arena arena = Arena.ofConfined()) {
            double[] w = new double[rows * cols];
            WeightMatrix m = random(arena, rows, cols, bh, bw, 3, w);
            MemorySegment out = arena.allocate(cols * 4L + 4);
            for (int r = 0; r < rows; r++) {
                m.copyRowTo(r, out, 1);
                for (int c = 0; c < cols; c++) {
                    assertThat(out.getAtIndex(F32, 1 + c)).as("row %d col %d", r, c).isEqualTo((float) w[r * cols + c]);
                }
            }
        }
    }

    /** The transposed product MLA uses to fold its key projection into the query, every format, against double. */
    @ParameterizedTest
    @CsvSource({"F32", "BF16", "F16", "F8_E4M3"})
    void combineRowsIsTheTransposedProduct(DType dtype) {
        int rows = 40;
        int cols = 72;
        try (Arena arena = Arena.ofConfined()) {
            double[] w = new double[rows * cols];
            WeightMatrix m;
            if (dtype == DType.F8_E4M3) {
                m = random(arena, rows, cols, 16, 16, 11, w);
            } else {
                SplittableRandom rnd = new SplittableRandom(5);
                MemorySegment data = arena.allocate((long) rows * cols * dtype.bytes());
                for (int i = 0; i < rows * cols; i++) {
                    float v = (float) rnd.nextGaussian();
                    switch (dtype) {
                        case F32 -> data.setAtIndex(F32, i, v);
                        case BF16 -> data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(v));
                        default -> data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(v));
                    }
                }
                m = WeightMatrix.of("w", data, dtype, rows, cols);
                MemorySegment row = arena.allocate(cols * 4L);
                for (int r = 0; r < rows; r++) {
                    m.copyRowTo(r, row, 0);
                    for (int c = 0; c < cols; c++) {
                        w[r * cols + c] = row.getAtIndex(F32, c);
                    }
                }
            }
            SplittableRandom rnd = new SplittableRandom(9);
            MemorySegment a = arena.allocate(rows * 4L);
            for (int i = 0; i < rows; i++) {
                a.setAtIndex(F32, i, (float) rnd.nextGaussian());
            }
            MemorySegment y = arena.allocate(cols * 4L + 8);
            MemorySegment scratch = arena.allocate(cols * 4L);
            int start = 5;
            int count = 30;
            m.combineRows(a, 2, start, count, y, 2, scratch);
            for (int c = 0; c < cols; c++) {
                double exact = 0;
                double abs = 0;
                for (int i = 0; i < count; i++) {
                    double p = a.getAtIndex(F32, 2 + i) * w[(start + i) * cols + c];
                    exact += p;
                    abs += Math.abs(p);
                }
                assertThat((double) y.getAtIndex(F32, 2 + c)).as("col %d", c)
                        .isCloseTo(exact, Offset.offset(1e-6 * count * abs));
            }
            assertThatThrownBy(() -> m.combineRows(a, 0, 30, 11, y, 0, scratch))
                    .hasMessageContaining("rows [30, 41) outside [0, 40)");
        }
    }

    @Test
    void scalesOfTheWrongShapeOrNoneAtAllFailNamingTheTensor() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(24L * 64);
            BlockScales wrong = new BlockScales(arena.allocate(4 * 4), 16, 16);
            assertThatThrownBy(() -> WeightMatrix.of("kv_b_proj.weight", data, DType.F8_E4M3, 24, 64, (n, r, c) -> wrong))
                    .hasMessageContaining("kv_b_proj.weight")
                    .hasMessageContaining("expected [2, 4]");
            assertThatThrownBy(() -> WeightMatrix.of("q.weight", data, DType.F8_E4M3, 24, 64))
                    .hasMessageContaining("q.weight")
                    .hasMessageContaining("weight_scale_inv");
        }
    }
}
