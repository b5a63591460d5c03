package io.moecluster.bench;

import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.BlockScales;
import io.moecluster.core.kernels.Fp8E4m3;
import io.moecluster.core.kernels.Int8Matrix;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The Linear-layer kernel ({@code y = x W^T}) on an expert-sized weight ({@code [2048, 1024]},
 * the bench preset's gate/up projection), against a plain scalar loop over the same memory, in
 * one run. Time per call; weight bytes / time gives the effective bandwidth.
 *
 * <p>{@code vector1t} is the Vector API kernel on the calling thread; {@code vectorPool} splits
 * rows over the worker pool (all cores); {@code scalar1t} is the baseline (a plain loop widening
 * each weight with its format's scalar conversion). The kernels' width follows
 * {@code -Dmoe.vectorBits} (pass it with {@code -jvmArgsAppend}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatMulBenchmark {
    @Param({"F32", "BF16", "F16", "F8_E4M3", "I8"})
    public String dtype;

    @Param({"1", "4", "8"})
    public int batch;

    @Param({"2048"})
    public int rows;

    @Param({"1024"})
    public int cols;

    private Arena arena;
    private WorkerPool pool;
    private MatMul matmul;
    private WeightMatrix w;
    private MemorySegment x;
    private MemorySegment y;
    private DType d;
    /** F8_E4M3: one multiplier per 128x128 block (DeepSeek-V3's weight_scale_inv), so that values span the format. */
    private MemorySegment scales;
    private static final int BLOCK = 128;
    private static final float FP8_SCALE = (1f / 32f) / Fp8E4m3.MAX;
    /** I8: one multiplier per block of 32 along a row, so that the values (up to 1/32) span [-127, 127]. */
    private static final float I8_SCALE = (1f / 32f) / 127f;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        pool = WorkerPool.ofAvailableProcessors("bench");
        matmul = new MatMul(pool);
        d = DType.parse(dtype);
        SplittableRandom rnd = new SplittableRandom(42);
        MemorySegment data = arena.allocate((long) rows * cols * d.bytes(), 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) (rnd.nextDouble() * 2 - 1) / 32f;
            switch (d) {
                case F32 -> data.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
                case BF16 -> data.setAtIndex(ValueLayout.JAVA_SHORT, i, Bf16.fromFloat(v));
                case F16 -> data.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(v));
                case F8_E4M3 -> data.set(ValueLayout.JAVA_BYTE, i, Fp8E4m3.fromFloat(v / FP8_SCALE));
                case I8 -> data.set(ValueLayout.JAVA_BYTE, i, (byte) Math.round(v / I8_SCALE));
            }
        }
        boolean int8 = d == DType.I8;
        long scaleCount = int8 ? (long) rows * Int8Matrix.blocks(cols)
                : (long) ((rows + BLOCK - 1) / BLOCK) * ((cols + BLOCK - 1) / BLOCK);
        scales = arena.allocate(scaleCount * 4, 64);
        for (long i = 0; i < scaleCount; i++) {
            scales.setAtIndex(ValueLayout.JAVA_FLOAT, i, int8 ? I8_SCALE : FP8_SCALE);
        }
        BlockScales blockScales = int8 ? new BlockScales(scales, 1, Int8Matrix.BLOCK) : new BlockScales(scales, BLOCK, BLOCK);
        w = WeightMatrix.of("bench", data, d, rows, cols, (name, r, c) -> blockScales);
        x = arena.allocate((long) batch * cols * 4, 64);
        y = arena.allocate((long) batch * rows * 4, 64);
        for (long i = 0; i < (long) batch * cols; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble());
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public void vector1t(Blackhole bh) {
        MatMul.rows(w, x, 0, y, 0, batch, 0, rows);
        bh.consume(y);
    }

    @Benchmark
    public void vectorPool(Blackhole bh) {
        matmul.apply(w, x, y, batch);
        bh.consume(y);
    }

    @Benchmark
    public void scalar1t(Blackhole bh) {
        DType d = this.d;
        MemorySegment wd = w.data();
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < batch; b++) {
                float sum = 0f;
                long wRow = (long) r * cols;
                long xRow = (long) b * cols;
                for (int k = 0; k < cols; k++) {
                    float wk = switch (d) {
                        case F32 -> wd.getAtIndex(Kernels.F32, wRow + k);
                        case BF16 -> Bf16.toFloat(wd.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, wRow + k));
                        case F16 -> Float.float16ToFloat(wd.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, wRow + k));
                        case F8_E4M3 -> Fp8E4m3.toFloat(wd.get(ValueLayout.JAVA_BYTE, wRow + k))
                                * scales.getAtIndex(Kernels.F32, (long) (r / BLOCK) * ((cols + BLOCK - 1) / BLOCK) + k / BLOCK);
                        case I8 -> wd.get(ValueLayout.JAVA_BYTE, wRow + k)
                                * scales.getAtIndex(Kernels.F32, (long) r * Int8Matrix.blocks(cols) + k / Int8Matrix.BLOCK);
                    };
                    sum += wk * x.getAtIndex(Kernels.F32, xRow + k);
                }
                y.setAtIndex(Kernels.F32, (long) b * rows + r, sum);
            }
        }
        bh.consume(y);
    }
}
