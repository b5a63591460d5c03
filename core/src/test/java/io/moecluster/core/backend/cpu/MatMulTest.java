package io.moecluster.core.backend.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MatMulTest {
    /**
     * f32 accumulation over at most a few hundred terms of O(1) values: relative error of order
     * sqrt(n) * 2^-24 ≈ 1e-6; 1e-5 leaves headroom without hiding a wrong index.
     */
    private static final double TOLERANCE = 1e-5;

    /**
     * The same inputs give the same bits cold (interpreter, C1) and hot (C2): the Vector API's
     * own lane reduction sums in a tier-dependent order, which made a token's logits depend on how
     * warm the JIT was. Several thousand calls are enough for C2 to compile the kernel.
     */
    @org.junit.jupiter.api.Test
    void resultsDoNotDependOnTheJitTier() {
        int rows = 24;
        int cols = 100;
        int batch = 5;
        SplittableRandom rnd = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment wData = arena.allocate((long) rows * cols * 2);
            for (int i = 0; i < rows * cols; i++) {
                wData.setAtIndex(ValueLayout.JAVA_SHORT, i, Bf16.fromFloat((float) rnd.nextGaussian()));
            }
            WeightMatrix w = WeightMatrix.of("w", wData, DType.BF16, rows, cols);
            MemorySegment x = arena.allocate((long) batch * cols * 4);
            for (int i = 0; i < batch * cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
            }
            MemorySegment cold = arena.allocate((long) batch * rows * 4);
            MemorySegment hot = arena.allocate((long) batch * rows * 4);
            MatMul.rows(w, x, 0, cold, 0, batch, 0, rows);
            float coldDot = Kernels.dot(x, 0, x, cols, cols);
            for (int i = 0; i < 20_000; i++) {
                MatMul.rows(w, x, 0, hot, 0, batch, 0, rows);
                assertThat(Kernels.dot(x, 0, x, cols, cols)).isEqualTo(coldDot);
            }
            assertThat(hot.mismatch(cold)).as("first differing byte").isEqualTo(-1L);
        }
    }

    @ParameterizedTest(name = "{0} [{1}x{2}] batch {3}")
    @CsvSource({
        "F32, 7, 5, 1", "F32, 33, 64, 3", "F32, 40, 100, 9", "F32, 17, 257, 4",
        "BF16, 7, 5, 1", "BF16, 33, 64, 3", "BF16, 40, 100, 9", "BF16, 17, 257, 5",
        "F16, 7, 5, 1", "F16, 33, 64, 3", "F16, 40, 100, 9", "F16, 17, 257, 5",
        // 61 and 1021 columns take a single-vector step and a scalar tail at 128, 256 and 512 bits.
        "F32, 9, 61, 6", "BF16, 9, 61, 6", "F16, 9, 61, 6", "F32, 5, 1021, 4", "BF16, 5, 1021, 4", "F16, 5, 1021, 4",
        // BF16's two-row tiles: with and without a tail; leftover tokens 1, 2 and 3 after the blocks
        // of four (9, 10, 11); an odd row count.
        "BF16, 13, 320, 9", "BF16, 11, 100, 7", "BF16, 6, 1024, 8", "BF16, 6, 1024, 6", "BF16, 6, 1024, 10",
        "BF16, 7, 64, 11",
        // One token (decode at a batch of one): whole vector pairs, and a single-vector step with a scalar tail.
        "BF16, 11, 128, 1", "BF16, 11, 100, 1"
    })
    void matchesDoublePrecisionReferenceAndIsBatchInvariant(String dtype, int rows, int cols, int batch) {
        DType d = DType.parse(dtype);
        SplittableRandom rnd = new SplittableRandom(rows * 31L + cols);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2, "test")) {
            MemorySegment wData = arena.allocate((long) rows * cols * d.bytes() + 3).asSlice(3); // unaligned on purpose
            float[] wValues = new float[rows * cols];
            for (int i = 0; i < wValues.length; i++) {
                float v = (float) (rnd.nextDouble() * 2 - 1);
                if (d == DType.BF16) {
                    short b = Bf16.fromFloat(v);
                    wData.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, b);
                    wValues[i] = Bf16.toFloat(b);
                } else if (d == DType.F16) {
                    short h = Float.floatToFloat16(v);
                    wData.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, h);
                    wValues[i] = Float.float16ToFloat(h);
                } else {
                    wData.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
                    wValues[i] = v;
                }
            }
            WeightMatrix w = WeightMatrix.of("w", wData, d, rows, cols);
            MemorySegment x = arena.allocate((long) batch * cols * 4);
            for (int i = 0; i < batch * cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextDouble() * 2 - 1));
            }
            MemorySegment y = arena.allocate((long) batch * rows * 4);
            new MatMul(pool).apply(w, x, y, batch);

            MemorySegment single = arena.allocate((long) rows * 4);
            for (int b = 0; b < batch; b++) {
                MatMul.rows(w, x, b, single, 0, 1, 0, rows);
                for (int r = 0; r < rows; r++) {
                    double ref = 0;
                    for (int k = 0; k < cols; k++) {
                        ref += (double) wValues[r * cols + k] * x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) b * cols + k);
                    }
                    float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) b * rows + r);
                    assertThat(Math.abs(got - ref)).as("row %d token %d", r, b)
                            .isLessThanOrEqualTo(TOLERANCE * Math.max(1.0, Math.sqrt(cols)));
                    assertThat(Float.floatToRawIntBits(single.getAtIndex(ValueLayout.JAVA_FLOAT, r)))
                            .as("token %d alone must equal token %d in a batch of %d", b, b, batch)
                            .isEqualTo(Float.floatToRawIntBits(got));
                }
            }
        }
    }
}
