package io.moecluster.cuda.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.backend.FfnBatch;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.backend.cpu.CpuBackend;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.testing.GoldenModels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The GPU path's expert math ({@link CudaFfnKernel}, {@link ExpertFfnProgram}, {@link BatchLayout},
 * {@link DeviceWeightStore}) run over the host emulation of the device steps, against the CPU
 * backend's FFN on the golden models' experts. The difference is BF16 rounding only: weights and
 * activations to BF16, BF16 GEMM outputs.
 */
class ExpertFfnProgramTest {
    /** What the GPU check allows a row of a GPU expert against the CPU; the emulation stays well below. */
    static final double BF16_ROW_TOLERANCE = 2e-2;

    private record Layer(List<FfnWeights> experts) {
    }

    private static List<Layer> layers(String model, WeightLoader loader, ModelConfig config) {
        List<Layer> layers = new ArrayList<>();
        for (int l = 0; l < config.numLayers(); l++) {
            if (!config.isMoeLayer(l)) {
                continue;
            }
            List<FfnWeights> experts = new ArrayList<>();
            for (int e = 0; e < config.numExperts(); e++) {
                experts.add(loader.expert(l, e));
            }
            if (config.hasSharedExpert()) {
                experts.add(loader.sharedExpert(l));
            }
            layers.add(new Layer(experts));
        }
        return layers;
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE})
    void everyExpertOfABatchMatchesTheCpuWithinBf16Rounding(String model) throws Exception {
        Path dir = GoldenModels.dir(model);
        ModelConfig config = ModelConfig.load(dir);
        int hidden = config.hiddenSize();
        int maxRows = 7;
        try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config);
             WorkerPool pool = new WorkerPool(1, "t"); Arena arena = Arena.ofConfined();
             EmulatedFfnDevice device = new EmulatedFfnDevice()) {
            List<Layer> layers = layers(model, loader, config);
            int maxFfn = layers.stream().flatMap(l -> l.experts().stream()).mapToInt(FfnWeights::ffn).max().orElseThrow();
            FfnKernel cpu = new CpuBackend(pool).newFfn(maxRows, maxFfn);
            DeviceWeightStore store = new DeviceWeightStore(device);
            CudaFfnKernel gpu = new CudaFfnKernel(device, store, maxRows, maxFfn);
            layers.forEach(l -> l.experts().forEach(gpu::prepare));
            assertThat(store.count()).isEqualTo(layers.size() * layers.getFirst().experts().size());
            long uploaded = device.allocated;
            layers.forEach(l -> l.experts().forEach(gpu::prepare));
            assertThat(device.allocated).as("weights are uploaded once").isEqualTo(uploaded);

            Random random = new Random(11);
            double worst = 0;
            for (Layer layer : layers) {
                int n = layer.experts().size();
                int[] rows = new int[n];
                int total = 0;
                for (int i = 0; i < n; i++) {
                    rows[i] = random.nextInt(maxRows + 1);
                    total += rows[i];
                }
                MemorySegment x = gaussian(arena, (long) total * hidden, random);
                MemorySegment scales = arena.allocate((long) total * 4);
                for (int r = 0; r < total; r++) {
                    Kernels.set(scales, r, 0.1f + random.nextFloat());
                }
                MemorySegment cpuOut = arena.allocate((long) total * hidden * 4);
                MemorySegment gpuOut = arena.allocate((long) total * hidden * 4);
                FfnBatch batch = new FfnBatch(n);
                int row = 0;
                for (int i = 0; i < n; i++) {
                    // one expert without routing weights, as a dense MLP runs
                    batch.add(layer.experts().get(i), x, row, rows[i], i == 1 ? null : scales, row, null, row);
                    row += rows[i];
                }
                FfnBatch cpuBatch = withOut(batch, cpuOut);
                FfnBatch gpuBatch = withOut(batch, gpuOut);
                cpu.runBatch(cpuBatch);
                gpu.runBatch(gpuBatch);
                for (int r = 0; r < total; r++) {
                    double err = rowError(gpuOut, cpuOut, r, hidden);
                    worst = Math.max(worst, err);
                    assertThat(err).as("%s row %d", model, r).isLessThan(BF16_ROW_TOLERANCE);
                }
            }
            System.out.printf(Locale.ROOT, "%s: largest per-row relative error of the emulated GPU experts vs the CPU: %.3g%n",
                    model, worst);
            assertThat(worst).isGreaterThan(0).isLessThan(1e-2);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 5})
    void aBatchLargerThanTheWorkspaceRunsInChunksWithTheSameBits(int capacityRows) throws Exception {
        Path dir = GoldenModels.dir(GoldenModels.QWEN2_MOE);
        ModelConfig config = ModelConfig.load(dir);
        int hidden = config.hiddenSize();
        try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config);
             Arena arena = Arena.ofConfined(); EmulatedFfnDevice device = new EmulatedFfnDevice()) {
            Layer layer = layers(GoldenModels.QWEN2_MOE, loader, config).getFirst();
            int maxFfn = layer.experts().stream().mapToInt(FfnWeights::ffn).max().orElseThrow();
            DeviceWeightStore store = new DeviceWeightStore(device);
            layer.experts().forEach(store::upload);
            ExpertFfnProgram whole = new ExpertFfnProgram(device, store, hidden, maxFfn, 64, 64);
            ExpertFfnProgram chunked = new ExpertFfnProgram(device, store, hidden, maxFfn, Math.max(capacityRows, 3), 2);
            int n = layer.experts().size();
            MemorySegment x = gaussian(arena, 3L * n * hidden, new Random(5));
            MemorySegment a = arena.allocate(3L * n * hidden * 4);
            MemorySegment b = arena.allocate(3L * n * hidden * 4);
            FfnBatch batch = new FfnBatch(n);
            for (int i = 0; i < n; i++) {
                batch.add(layer.experts().get(i), x, 3 * i, i % 4, null, 0, null, 3 * i);
            }
            int calls = device.groupedCalls;
            whole.run(withOut(batch, a));
            assertThat(device.groupedCalls - calls).as("one grouped GEMM per projection").isEqualTo(2);
            chunked.run(withOut(batch, b));
            assertThat(b.asByteBuffer()).isEqualTo(a.asByteBuffer());
        }
    }

    @org.junit.jupiter.api.Test
    void theBenchmarksStagedPathComputesWhatARunDoes() throws Exception {
        Path dir = GoldenModels.dir(GoldenModels.MIXTRAL);
        ModelConfig config = ModelConfig.load(dir);
        int hidden = config.hiddenSize();
        try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config);
             Arena arena = Arena.ofConfined(); EmulatedFfnDevice device = new EmulatedFfnDevice()) {
            Layer layer = layers(GoldenModels.MIXTRAL, loader, config).getFirst();
            int n = layer.experts().size();
            DeviceWeightStore store = new DeviceWeightStore(device);
            DeviceFfn[] w = layer.experts().stream().map(store::upload).toArray(DeviceFfn[]::new);
            ExpertFfnProgram p = new ExpertFfnProgram(device, store, hidden, w[0].ffn(), 4 * n, n);
            int[] rows = new int[n];
            Arrays.fill(rows, 4);
            MemorySegment x = gaussian(arena, 4L * n * hidden, new Random(9));
            MemorySegment staged = arena.allocate(4L * n * hidden * 4);
            double flops = p.stage(w, rows, n, x);
            assertThat(flops).isEqualTo(6.0 * 4 * n * hidden * w[0].ffn());
            p.computeStaged();
            p.fetchStaged(staged);
            MemorySegment ran = arena.allocate(4L * n * hidden * 4);
            FfnBatch batch = new FfnBatch(n);
            for (int i = 0; i < n; i++) {
                batch.add(layer.experts().get(i), x, 4 * i, 4, null, 0, ran, 4 * i);
            }
            p.run(batch);
            assertThat(staged.asByteBuffer()).isEqualTo(ran.asByteBuffer());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"BF16", "F16"})
    void bf16AndF16CheckpointsAreConvertedOnUploadAsTheCpuReadsThem(String format) throws Exception {
        Path dir = GoldenModels.dir(GoldenModels.MIXTRAL);
        ModelConfig config = ModelConfig.load(dir);
        int hidden = config.hiddenSize();
        try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config);
             Arena arena = Arena.ofConfined(); EmulatedFfnDevice device = new EmulatedFfnDevice()) {
            FfnWeights f32 = loader.expert(0, 3);
            // the same weights stored as format, and as the f32 values the CPU widens them to
            FfnWeights stored = new FfnWeights(as(arena, f32.gate(), format), as(arena, f32.up(), format),
                    as(arena, f32.down(), format));
            FfnWeights widened = new FfnWeights(widen(arena, stored.gate()), widen(arena, stored.up()),
                    widen(arena, stored.down()));
            DeviceWeightStore store = new DeviceWeightStore(device);
            store.upload(stored);
            store.upload(widened);
            ExpertFfnProgram p = new ExpertFfnProgram(device, store, hidden, f32.ffn(), 8, 4);
            MemorySegment x = gaussian(arena, 4L * hidden, new Random(3));
            MemorySegment a = arena.allocate(4L * hidden * 4);
            MemorySegment b = arena.allocate(4L * hidden * 4);
            FfnBatch batch = new FfnBatch(1);
            batch.add(stored, x, 0, 4, null, 0, a, 0);
            p.run(batch);
            batch.clear();
            batch.add(widened, x, 0, 4, null, 0, b, 0);
            p.run(batch);
            assertThat(a.asByteBuffer()).isEqualTo(b.asByteBuffer());
            assertThatThrownBy(() -> store.get(f32)).hasMessageContaining("were not prepared");
        }
    }

    private static WeightMatrix as(Arena arena, WeightMatrix f32, String format) {
        long n = (long) f32.rows() * f32.cols();
        MemorySegment data = arena.allocate(n * 2);
        for (long i = 0; i < n; i++) {
            float v = f32.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, format.equals("BF16") ? Bf16.fromFloat(v)
                    : Float.floatToFloat16(v));
        }
        return WeightMatrix.of(f32.name(), data, DType.valueOf(format), f32.rows(), f32.cols());
    }

    private static WeightMatrix widen(Arena arena, WeightMatrix m) {
        MemorySegment data = arena.allocate((long) m.rows() * m.cols() * 4);
        for (int r = 0; r < m.rows(); r++) {
            m.copyRowTo(r, data, (long) r * m.cols());
        }
        return WeightMatrix.of(m.name(), data, DType.F32, m.rows(), m.cols());
    }

    static FfnBatch withOut(FfnBatch b, MemorySegment out) {
        FfnBatch c = new FfnBatch(b.capacity());
        for (int i = 0; i < b.size(); i++) {
            c.add(b.weights(i), b.x(i), b.xRow(i), b.rows(i), b.scales(i), b.scaleIndex(i), out, b.outRow(i));
        }
        return c;
    }

    static MemorySegment gaussian(Arena arena, long n, Random random) {
        MemorySegment s = arena.allocate(Math.max(4, n * 4));
        for (long i = 0; i < n; i++) {
            Kernels.set(s, i, (float) random.nextGaussian());
        }
        return s;
    }

    static double rowError(MemorySegment ours, MemorySegment ref, int row, int cols) {
        double diff = 0;
        double norm = 0;
        for (int c = 0; c < cols; c++) {
            double a = Kernels.get(ours, (long) row * cols + c);
            double b = Kernels.get(ref, (long) row * cols + c);
            diff += (a - b) * (a - b);
            norm += b * b;
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }
}
