package io.moecluster.core.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Each weight format's layout, widening and row kernel, at whatever width this JVM runs ({@code moe.vectorBits}). */
class WeightFormatsTest {
    private static final ValueLayout.OfShort RAW16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final int ALL_F16 = 1 << 16;

    private static int expectedBits(int f16) {
        return Float.floatToRawIntBits(Float.float16ToFloat((short) f16));
    }

    private static MemorySegment everyF16(Arena arena) {
        MemorySegment seg = arena.allocate(ALL_F16 * 2L + 2).asSlice(2); // off the allocation's alignment
        for (int i = 0; i < ALL_F16; i++) {
            seg.setAtIndex(RAW16, i, (short) i);
        }
        return seg;
    }

    /** The vector widening against Float.float16ToFloat, every bit pattern, cold and after C2 has compiled it. */
    @Test
    void f16VectorWideningIsFloat16ToFloatForEveryBitPattern() {
        if (Kernels.SCALAR) {
            return; // no vectors: the kernels call Float.float16ToFloat itself
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = everyF16(arena);
            for (int pass = 0; pass < 40; pass++) {
                for (int i = 0; i < ALL_F16; i += Kernels.LANES) {
                    FloatVector v = F16Matrix.loadF16(seg, i);
                    for (int l = 0; l < Kernels.LANES; l++) {
                        int got = Float.floatToRawIntBits(v.lane(l));
                        if (got != expectedBits(i + l)) {
                            assertThat(Integer.toHexString(got)).as("f16 0x%04x, pass %d", i + l, pass)
                                    .isEqualTo(Integer.toHexString(expectedBits(i + l)));
                        }
                    }
                }
            }
        }
    }

    @Test
    void f16CopyRowWidensEveryBitPatternExactly() {
        try (Arena arena = Arena.ofConfined()) {
            WeightMatrix w = WeightMatrix.of("all", everyF16(arena), DType.F16, 256, 256);
            MemorySegment out = arena.allocate(ALL_F16 * 4L);
            for (int r = 0; r < 256; r++) {
                w.copyRowTo(r, out, (long) r * 256);
            }
            for (int i = 0; i < ALL_F16; i++) {
                assertThat(out.getAtIndex(ValueLayout.JAVA_INT, i)).as("f16 0x%04x", i).isEqualTo(expectedBits(i));
            }
        }
    }

    /**
     * Every finite f16 through the row kernel: one-hot activations pick single weights out of the
     * dot products, so y equals the widened weight exactly. 61 columns take the two-vector steps,
     * a single-vector step and a scalar tail at 128, 256 and 512 bits; a batch of 5 takes dot4 and
     * dot1.
     */
    @Test
    void f16KernelReadsEveryFiniteValueExactly() {
        int cols = 61;
        int batch = 5;
        int finite = 0;
        short[] values = new short[ALL_F16];
        for (int i = 0; i < ALL_F16; i++) {
            if ((i & 0x7c00) != 0x7c00) {
                values[finite++] = (short) i;
            }
        }
        int rows = (finite + cols - 1) / cols;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate((long) rows * cols * 2);
            for (int i = 0; i < finite; i++) {
                data.setAtIndex(RAW16, i, values[i]);
            }
            WeightMatrix w = WeightMatrix.of("finite", data, DType.F16, rows, cols);
            MemorySegment x = arena.allocate((long) batch * cols * 4);
            MemorySegment y = arena.allocate((long) batch * rows * 4);
            for (int c = 0; c < cols; c++) {
                x.fill((byte) 0);
                for (int b = 0; b < batch; b++) {
                    x.setAtIndex(F32, (long) b * cols + (c + 7 * b) % cols, 1f);
                }
                w.applyRows(x, 0, y, 0, batch, 0, rows);
                for (int b = 0; b < batch; b++) {
                    int col = (c + 7 * b) % cols;
                    for (int r = 0; r < rows; r++) {
                        float expected = Float.float16ToFloat(data.getAtIndex(RAW16, (long) r * cols + col));
                        // == rather than bits: a sum that starts from +0 turns a -0 weight into +0.
                        float got = y.getAtIndex(F32, (long) b * rows + r);
                        if (got != expected) {
                            assertThat(got).as("row %d col %d token %d", r, col, b).isEqualTo(expected);
                        }
                    }
                }
            }
        }
    }

    /**
     * Layout and kernels of every format agree on what the bytes mean: copyRowTo and a one-hot dot
     * give the decoded value. (The block-quantized formats have their own tests, Fp8MatrixTest and Int8MatrixTest.)
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.EXCLUDE, names = {"F8_E4M3", "I8"})
    void rowCopiesAndKernelsDecodeTheLayout(DType dtype) {
        int rows = 13;
        int cols = 45;
        SplittableRandom rnd = new SplittableRandom(dtype.ordinal());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate((long) rows * cols * dtype.bytes());
            float[] decoded = new float[rows * cols];
            for (int i = 0; i < decoded.length; i++) {
                float v = (float) rnd.nextGaussian();
                switch (dtype) {
                    case F32 -> {
                        data.setAtIndex(F32, i, v);
                        decoded[i] = v;
                    }
                    case BF16 -> {
                        data.setAtIndex(RAW16, i, Bf16.fromFloat(v));
                        decoded[i] = Bf16.toFloat(Bf16.fromFloat(v));
                    }
                    case F16 -> {
                        data.setAtIndex(RAW16, i, Float.floatToFloat16(v));
                        decoded[i] = Float.float16ToFloat(Float.floatToFloat16(v));
                    }
                }
            }
            WeightMatrix w = WeightMatrix.of("w", data, dtype, rows, cols);
            assertThat(w.format()).isEqualTo(dtype.safetensorsName());
            assertThat(w.byteSize()).isEqualTo((long) rows * cols * dtype.bytes());
            MemorySegment row = arena.allocate(cols * 4L + 4);
            for (int r = 0; r < rows; r++) {
                w.copyRowTo(r, row, 1);
                for (int c = 0; c < cols; c++) {
                    assertThat(row.getAtIndex(F32, 1 + c)).isEqualTo(decoded[r * cols + c]);
                }
            }
            MemorySegment x = arena.allocate(cols * 4L);
            MemorySegment y = arena.allocate(rows * 4L);
            for (int c = 0; c < cols; c++) {
                x.fill((byte) 0);
                x.setAtIndex(F32, c, 1f);
                w.applyRows(x, 0, y, 0, 1, 0, rows);
                for (int r = 0; r < rows; r++) {
                    assertThat(y.getAtIndex(F32, r)).as("row %d col %d", r, c).isEqualTo(decoded[r * cols + c]);
                }
            }
        }
    }

    @Test
    void checkpointDtypesMapToTheirFormats() {
        try (Arena arena = Arena.ofConfined()) {
            assertThat(WeightMatrix.of("a", arena.allocate(2 * 3 * 4), DType.F32, 2, 3)).isInstanceOf(F32Matrix.class);
            assertThat(WeightMatrix.of("b", arena.allocate(2 * 3 * 2), DType.BF16, 2, 3)).isInstanceOf(Bf16Matrix.class);
            WeightMatrix f16 = WeightMatrix.of("c", arena.allocate(2 * 3 * 2), DType.F16, 2, 3);
            assertThat(f16).isInstanceOf(F16Matrix.class);
            assertThat(f16.name()).isEqualTo("c");
            assertThat(f16.rows()).isEqualTo(2);
            assertThat(f16.cols()).isEqualTo(3);
            assertThat(f16.isMapped()).as("arena memory is not a mapping").isFalse();
            assertThat(f16).hasToString("c F16 [2, 3]");
        }
    }

    @Test
    void aSizeThatIsNotTheShapesFailsNamingTheTensor() {
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> WeightMatrix.of("layers.0.q", arena.allocate(2 * 3 * 4), DType.F16, 2, 3))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("layers.0.q: 24 bytes for F16 [2, 3], expected 12");
            assertThatThrownBy(() -> WeightMatrix.of("w", arena.allocate(10), DType.F32, 2, 3))
                    .hasMessage("w: 10 bytes for F32 [2, 3], expected 24");
        }
    }
}
