package io.moecluster.cuda.check;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.FfnBatch;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.backend.cpu.CpuBackend;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.io.NpyFile;
import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.cuda.backend.CudaBackend;
import io.moecluster.cuda.backend.CudaBackendProvider;
import io.moecluster.cuda.backend.CudaFfnDevice;
import io.moecluster.cuda.backend.CudaKernels;
import io.moecluster.cuda.backend.DeviceFfn;
import io.moecluster.cuda.backend.DeviceFill;
import io.moecluster.cuda.backend.DeviceWeightStore;
import io.moecluster.cuda.backend.ExpertFfnProgram;
import io.moecluster.cuda.backend.KernelTarget;
import io.moecluster.cuda.bindings.Cublas;
import io.moecluster.cuda.bindings.CublasLt;
import io.moecluster.cuda.bindings.CudaException;
import io.moecluster.cuda.bindings.CudaLibraries;
import io.moecluster.cuda.bindings.Cudart;
import io.moecluster.cuda.bindings.DeviceAttribute;
import io.moecluster.cuda.bindings.Event;
import io.moecluster.cuda.bindings.Nccl;
import io.moecluster.cuda.bindings.Nvrtc;
import io.moecluster.cuda.exchange.ExchangePlan;
import io.moecluster.cuda.exchange.NcclExchange;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The GPU check's Java side ({@code scripts/gpu-check.sh} runs it on a GPU host with a jlinked
 * runtime): libraries, kernels compiled by NVRTC, device attributes, every kernel against a CPU
 * reference, BF16 GEMM through cuBLASLt, every expert FFN of the golden models on the GPU against
 * the CPU backend, whole engines ({@code --device cuda}) against the float64 reference logits and the
 * CPU engine's greedy tokens, a one-rank NCCL send/recv, and the expert FFN benchmark at
 * RakutenAI-2.0-8x7B's shapes. Everything goes to a Markdown report.
 *
 * <pre>
 * java -cp moe.jar io.moecluster.cuda.check.GpuCheck run --golden DIR --out DIR [--device N] [--no-bench]
 * java -cp moe.jar io.moecluster.cuda.check.GpuCheck tokens --golden DIR --model M --case C
 * java -cp moe.jar io.moecluster.cuda.check.GpuCheck compare-logits --golden DIR --model M --case C --npy F --tolerance T --label L
 * java -cp moe.jar io.moecluster.cuda.check.GpuCheck bench-table --moe F --torch F
 * </pre>
 * Exit status of {@code run}: 0 every check passed, 1 a check failed, 2 NVIDIA's libraries are
 * missing, 3 the first call that needs a GPU failed (no usable GPU: where a dry run stops).
 */
public final class GpuCheck {
    /** A row of an expert's output, GPU against the CPU backend (see ExpertFfnProgram's precision note). */
    static final double FFN_TOLERANCE = 2e-2;
    /** A row of logits against the float64 reference; the host emulation of the GPU path measures up to 2.3e-2. */
    static final double LOGITS_TOLERANCE = 5e-2;
    static final String[] MODELS = {"mixtral-tiny", "qwen2moe-tiny", "deepseek-v3-tiny", "deepseek-v3-tiny-fp8"};
    static final int BENCH_HIDDEN = 4096;
    static final int BENCH_FFN = 14336;
    static final int BENCH_EXPERTS = 8;
    static final int[] BENCH_TOKENS = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    static final float BENCH_WEIGHT_SCALE = 0.03125f;

    private final Report report;
    private final Path golden;
    private final Path out;
    private final int index;

    GpuCheck(Report report, Path golden, Path out, int index) {
        this.report = report;
        this.golden = golden;
        this.out = out;
        this.index = index;
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage();
        }
        String mode = args[0];
        String goldenArg = option(args, "--golden", "core/src/test/resources/golden");
        int code = switch (mode) {
            case "run" -> run(Path.of(goldenArg), Path.of(option(args, "--out", "gpu-check-out")),
                    Integer.parseInt(option(args, "--device", "0")), !Arrays.asList(args).contains("--no-bench"));
            case "tokens" -> {
                System.out.println(join(goldenCase(Path.of(goldenArg), option(args, "--model", null),
                        option(args, "--case", null)).tokens()));
                yield 0;
            }
            case "compare-logits" -> compareLogits(Path.of(goldenArg), option(args, "--model", null),
                    option(args, "--case", null), Path.of(option(args, "--npy", null)),
                    Double.parseDouble(option(args, "--tolerance", "" + LOGITS_TOLERANCE)), option(args, "--label", ""));
            case "bench-table" -> benchTable(Path.of(option(args, "--moe", null)), Path.of(option(args, "--torch", null)));
            default -> {
                usage();
                yield 2;
            }
        };
        System.exit(code);
    }

    private static void usage() {
        System.err.println("usage: GpuCheck run|tokens|compare-logits|bench-table [options] (see the class's javadoc)");
        System.exit(2);
    }

    private static String option(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        if (fallback == null) {
            throw new IllegalArgumentException("missing " + name);
        }
        return fallback;
    }

    // ---- run ---------------------------------------------------------------------------------

    static int run(Path golden, Path out, int index, boolean bench) throws Exception {
        Report report = new Report(out.resolve("gpu-check-java.md"));
        GpuCheck check = new GpuCheck(report, golden, out, index);
        long start = System.nanoTime();
        int code = check.all(bench);
        report.line("");
        report.line("Java checks: %d passed, %d failed, %.1f s.", report.passed(), report.failed(),
                (System.nanoTime() - start) / 1e9);
        return code;
    }

    private int all(boolean bench) throws Exception {
        report.line("# GPU check (Java side)");
        report.line("");
        report.line("JVM %s %s on %s; device index %d.", System.getProperty("java.vm.name"),
                System.getProperty("java.version"), System.getProperty("os.name") + " " + System.getProperty("os.arch"), index);
        CudaLibraries libs = CudaLibraries.system();
        report.section("NVIDIA libraries");
        report.line(libs.describe());
        // What the steps before the first GPU call need; cuBLAS is checked after it, so that a dry run
        // with only a runtime and NVRTC still gets as far as the device.
        if (libs.cudart().isEmpty() || libs.nvrtc().isEmpty()) {
            report.check(false, "CUDA runtime and NVRTC found: " + libs.problems());
            return 2;
        }
        Cudart cudart = libs.requireCudart();
        Nvrtc nvrtc = libs.requireNvrtc();

        report.section("Kernels compiled by NVRTC (no GPU needed)");
        for (Nvrtc.Output output : Nvrtc.Output.values()) {
            long t0 = System.nanoTime();
            List<Nvrtc.Compiled> compiled = CudaKernels.compileAll(nvrtc, output, 9, 0);
            for (Nvrtc.Compiled c : compiled) {
                report.check(c.log().isEmpty() && c.image().length > 0, String.format(Locale.ROOT,
                        "%s -> %s %s, %d bytes, log %s", c.name(), output, c.arch(), c.image().length,
                        c.log().isEmpty() ? "empty" : "'" + c.log() + "'"));
            }
            report.line("  (%s for sm_90 in %.0f ms)", output, (System.nanoTime() - t0) / 1e6);
        }

        report.section("Device (the first calls that need a GPU)");
        int count;
        try {
            report.line("CUDA driver version: %s", Cudart.versionString(cudart.driverVersion()));
            count = cudart.deviceCount();
        } catch (CudaException e) {
            report.check(false, "first call needing a GPU: " + e.getMessage());
            report.line("");
            report.line("No usable GPU here: the check stops at its first GPU call.");
            return 3;
        }
        report.line("CUDA devices: %d", count);
        if (index >= count) {
            report.check(false, "device " + index + " exists");
            return 3;
        }
        deviceAttributes(cudart, nvrtc);
        if (libs.cublas().isEmpty()) {
            report.check(false, "cuBLAS found: " + libs.problems().get(CudaLibraries.CUBLAS));
            return 2;
        }

        try (WorkerPool pool = new WorkerPool(2, "gpu-check");
             CudaBackend backend = (CudaBackend) new CudaBackendProvider().open(pool, index)) {
            report.line("Backend: %s", backend.description());
            kernels(backend.device());
            cublasLtGemm(libs, backend.device());
            expertFfns(backend, pool);
            report.line("Expert GEMMs: %s.", backend.device().gemmPath());
        }
        engines("cuda:" + index);
        nccl(libs);
        if (bench) {
            benchmark();
        }
        return report.failed() == 0 ? 0 : 1;
    }

    private void deviceAttributes(Cudart cudart, Nvrtc nvrtc) {
        cudart.setDevice(index);
        report.line("");
        report.line("| attribute | value |");
        report.line("| --- | --- |");
        report.line("| PCI bus id | %s |", cudart.pciBusId(index));
        for (DeviceAttribute a : DeviceAttribute.values()) {
            String v;
            try {
                v = String.valueOf(cudart.attribute(a, index));
            } catch (CudaException e) {
                v = e.statusName();
            }
            report.line("| %s (%d) | %s |", a.description(), a.code(), v);
        }
        long[] mem = cudart.memoryInfo();
        report.line("| memory free / total (MiB) | %d / %d |", mem[0] >> 20, mem[1] >> 20);
        report.line("| CUDA runtime | %s |", Cudart.versionString(cudart.runtimeVersion()));
        int cc0 = cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MAJOR, index);
        int cc1 = cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MINOR, index);
        report.line("| kernels | %s |", KernelTarget.explain(KernelTarget.choose(nvrtc.version(), cudart.driverVersion()),
                nvrtc.version(), cudart.driverVersion(), cc0, cc1));
    }

    // ---- kernels against the CPU ---------------------------------------------------------------

    private void kernels(CudaFfnDevice d) {
        report.section("Kernels against a CPU reference");
        Random random = new Random(42);
        try (Arena arena = Arena.ofConfined()) {
            CudaKernels k = d.kernels();
            // f32 -> bf16, with the special values
            int n = 1 << 20;
            MemorySegment x = d.allocateHost(4L * n);
            float[] specials = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
                -Float.MIN_VALUE, Float.MAX_VALUE, 1.00390625f, 1.01171875f, 65504f, 3.4e38f};
            for (int i = 0; i < n; i++) {
                float v = i < specials.length ? specials[i] : (float) (random.nextGaussian() * Math.pow(10, random.nextInt(20) - 10));
                x.setAtIndex(JAVA_FLOAT, i, v);
            }
            long dx = d.allocate(4L * n);
            long dy = d.allocate(2L * n);
            MemorySegment y = d.allocateHost(2L * n);
            d.copyToDevice(dx, x, 0, 4L * n);
            k.launcher("moe_f32_to_bf16", 3, arena).arg(0, dx).arg(1, dy).arg(2, n).launchOver(n, d.stream());
            d.copyToHost(y, 0, dy, 2L * n);
            d.synchronize();
            int bad = 0;
            for (int i = 0; i < n; i++) {
                short want = Bf16.fromFloat(x.getAtIndex(JAVA_FLOAT, i));
                bad += y.getAtIndex(JAVA_SHORT, i) == want ? 0 : 1;
            }
            report.check(bad == 0, "moe_f32_to_bf16: " + n + " values incl. NaN, infinities, subnormals; "
                    + bad + " differ from the CPU's round-to-nearest-even (exact required)");

            // every f16 bit pattern -> bf16
            MemorySegment h = d.allocateHost(2L * 65536);
            for (int i = 0; i < 65536; i++) {
                h.setAtIndex(JAVA_SHORT, i, (short) i);
            }
            d.copyToDevice(dx, h, 0, 2L * 65536);
            k.launcher("moe_f16_to_bf16", 3, arena).arg(0, dx).arg(1, dy).arg(2, 65536).launchOver(65536, d.stream());
            d.copyToHost(y, 0, dy, 2L * 65536);
            d.synchronize();
            bad = 0;
            for (int i = 0; i < 65536; i++) {
                float f = Float.float16ToFloat((short) i);
                short got = y.getAtIndex(JAVA_SHORT, i);
                boolean ok = Float.isNaN(f) ? Float.isNaN(Bf16.toFloat(got)) : got == Bf16.fromFloat(f);
                bad += ok ? 0 : 1;
            }
            report.check(bad == 0, "moe_f16_to_bf16: all 65536 F16 bit patterns; " + bad + " differ (exact required)");

            // silu_mul on [rows, 2 ffn] bf16
            int rows = 37;
            int ffn = 1000;
            MemorySegment gu = d.allocateHost(2L * rows * 2 * ffn);
            for (long i = 0; i < 2L * rows * ffn; i++) {
                gu.setAtIndex(JAVA_SHORT, i, Bf16.fromFloat((float) random.nextGaussian() * 3));
            }
            d.copyToDevice(dx, gu, 0, 2L * rows * 2 * ffn);
            k.launcher("moe_silu_mul", 4, arena).arg(0, dx).arg(1, dy).argInt(2, rows).argInt(3, ffn)
                    .launchOver((long) rows * ffn, d.stream());
            d.copyToHost(y, 0, dy, 2L * rows * ffn);
            d.synchronize();
            int worstUlps = 0;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < ffn; c++) {
                    float g = Bf16.toFloat(gu.getAtIndex(JAVA_SHORT, (long) r * 2 * ffn + c));
                    float u = Bf16.toFloat(gu.getAtIndex(JAVA_SHORT, (long) r * 2 * ffn + ffn + c));
                    short want = Bf16.fromFloat((float) (g / (1.0 + Math.exp(-g))) * u);
                    worstUlps = Math.max(worstUlps, Math.abs(y.getAtIndex(JAVA_SHORT, (long) r * ffn + c) - want));
                }
            }
            report.check(worstUlps <= 1, "moe_silu_mul: " + rows + " x " + ffn + "; largest difference " + worstUlps
                    + " BF16 ulp (at most 1: the GPU's expf against Java's exp)");

            // scale_rows: bf16 y times per-row f32 scales
            int cols = 777;
            MemorySegment yb = d.allocateHost(2L * rows * cols);
            MemorySegment s = d.allocateHost(4L * rows);
            for (long i = 0; i < (long) rows * cols; i++) {
                yb.setAtIndex(JAVA_SHORT, i, Bf16.fromFloat((float) random.nextGaussian()));
            }
            for (int r = 0; r < rows; r++) {
                s.setAtIndex(JAVA_FLOAT, r, random.nextFloat());
            }
            long ds = d.allocate(4L * rows);
            long dOut = d.allocate(4L * rows * cols);
            d.copyToDevice(dx, yb, 0, 2L * rows * cols);
            d.copyToDevice(ds, s, 0, 4L * rows);
            d.scaleRows(dx, ds, dOut, rows, cols);
            MemorySegment got = d.allocateHost(4L * rows * cols);
            d.copyToHost(got, 0, dOut, 4L * rows * cols);
            d.synchronize();
            bad = 0;
            for (long i = 0; i < (long) rows * cols; i++) {
                float want = s.getAtIndex(JAVA_FLOAT, i / cols) * Bf16.toFloat(yb.getAtIndex(JAVA_SHORT, i));
                bad += got.getAtIndex(JAVA_FLOAT, i) == want ? 0 : 1;
            }
            report.check(bad == 0, "moe_scale_rows: " + rows + " x " + cols + "; " + bad + " differ (exact required)");

            // scale_accumulate: acc += s * y, f32
            MemorySegment acc = d.allocateHost(4L * rows * cols);
            MemorySegment yf = d.allocateHost(4L * rows * cols);
            for (long i = 0; i < (long) rows * cols; i++) {
                acc.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
                yf.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            long dAcc = d.allocate(4L * rows * cols);
            d.copyToDevice(dAcc, acc, 0, 4L * rows * cols);
            d.copyToDevice(dOut, yf, 0, 4L * rows * cols);
            k.launcher("moe_scale_accumulate", 5, arena).arg(0, dAcc).arg(1, dOut).arg(2, ds).argInt(3, rows)
                    .argInt(4, cols).launchOver((long) rows * cols, d.stream());
            d.copyToHost(got, 0, dAcc, 4L * rows * cols);
            d.synchronize();
            double worst = 0;
            for (long i = 0; i < (long) rows * cols; i++) {
                double want = acc.getAtIndex(JAVA_FLOAT, i) + (double) s.getAtIndex(JAVA_FLOAT, i / cols) * yf.getAtIndex(JAVA_FLOAT, i);
                worst = Math.max(worst, Math.abs(got.getAtIndex(JAVA_FLOAT, i) - want) / Math.max(1e-3, Math.abs(want)));
            }
            report.check(worst < 1e-6, String.format(Locale.ROOT, "moe_scale_accumulate: %d x %d; largest relative "
                    + "difference %.2g from the double result (< 1e-6: f32 rounding, fused or not)", rows, cols, worst));

            // rms_norm
            int normRows = 19;
            int hidden = 4096;
            MemorySegment xs = d.allocateHost(4L * normRows * hidden);
            MemorySegment w = d.allocateHost(4L * hidden);
            for (long i = 0; i < (long) normRows * hidden; i++) {
                xs.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian() * 2);
            }
            for (int i = 0; i < hidden; i++) {
                w.setAtIndex(JAVA_FLOAT, i, 0.5f + random.nextFloat());
            }
            long dW = d.allocate(4L * hidden);
            long dNormIn = d.allocate(4L * normRows * hidden);
            long dNormOut = d.allocate(4L * normRows * hidden);
            MemorySegment normed = d.allocateHost(4L * normRows * hidden);
            d.copyToDevice(dNormIn, xs, 0, 4L * normRows * hidden);
            d.copyToDevice(dW, w, 0, 4L * hidden);
            k.launcher("moe_rms_norm", 6, arena).arg(0, dNormIn).arg(1, dW).arg(2, dNormOut).argInt(3, normRows)
                    .argInt(4, hidden).argFloat(5, 1e-5f).launch(normRows, 256, d.stream());
            d.copyToHost(normed, 0, dNormOut, 4L * normRows * hidden);
            d.synchronize();
            worst = 0;
            for (int r = 0; r < normRows; r++) {
                double ss = 0;
                for (int c = 0; c < hidden; c++) {
                    double v = xs.getAtIndex(JAVA_FLOAT, (long) r * hidden + c);
                    ss += v * v;
                }
                double inv = 1 / Math.sqrt(ss / hidden + 1e-5);
                double diff = 0;
                double norm = 0;
                for (int c = 0; c < hidden; c++) {
                    double want = xs.getAtIndex(JAVA_FLOAT, (long) r * hidden + c) * inv * w.getAtIndex(JAVA_FLOAT, c);
                    double dd = normed.getAtIndex(JAVA_FLOAT, (long) r * hidden + c) - want;
                    diff += dd * dd;
                    norm += want * want;
                }
                worst = Math.max(worst, Math.sqrt(diff / norm));
            }
            report.check(worst < 1e-5, String.format(Locale.ROOT, "moe_rms_norm: %d rows of %d; largest per-row "
                    + "relative error %.2g against double (< 1e-5)", normRows, hidden, worst));

            // fill
            long fillN = 1_000_003;
            k.launcher("moe_fill_uniform_bf16", 4, arena).arg(0, dy).arg(1, fillN).arg(2, 99).argFloat(3, BENCH_WEIGHT_SCALE)
                    .launchOver(fillN, d.stream());
            MemorySegment filled = d.allocateHost(2L * fillN);
            d.copyToHost(filled, 0, dy, 2L * fillN);
            d.synchronize();
            bad = 0;
            for (long i = 0; i < fillN; i++) {
                bad += filled.getAtIndex(JAVA_SHORT, i) == DeviceFill.bf16(99, i, BENCH_WEIGHT_SCALE) ? 0 : 1;
            }
            report.check(bad == 0, "moe_fill_uniform_bf16: " + fillN + " values; " + bad + " differ from the host's (exact)");
        } catch (RuntimeException e) {
            report.check(false, "kernels: " + e);
        }
    }

    private void cublasLtGemm(CudaLibraries libs, CudaFfnDevice d) {
        report.section("BF16 GEMM with f32 accumulation (cuBLASLt) against the CPU");
        int m = 256;
        int n = 64;
        int k = 4096;
        CublasLt lt = libs.requireCublasLt();
        try (Arena arena = Arena.ofConfined(); CublasLt.CublasLtHandle handle = lt.create();
             CublasLt.MatmulDesc desc = lt.matmulDesc(Cublas.COMPUTE_32F, Cublas.R_32F);
             CublasLt.MatrixLayout aLayout = lt.layout(Cublas.R_16BF, k, m, k);
             CublasLt.MatrixLayout bLayout = lt.layout(Cublas.R_16BF, k, n, k);
             CublasLt.MatrixLayout cLayout = lt.layout(Cublas.R_32F, m, n, m);
             CublasLt.MatmulPreference pref = lt.preference(32L << 20)) {
            lt.setInt(desc, CublasLt.MATMUL_DESC_TRANSA, Cublas.OP_T);
            lt.setInt(desc, CublasLt.MATMUL_DESC_TRANSB, Cublas.OP_N);
            Random random = new Random(7);
            MemorySegment a = d.allocateHost(2L * m * k);
            MemorySegment b = d.allocateHost(2L * n * k);
            for (long i = 0; i < (long) m * k; i++) {
                a.setAtIndex(JAVA_SHORT, i, Bf16.fromFloat((float) random.nextGaussian() * 0.05f));
            }
            for (long i = 0; i < (long) n * k; i++) {
                b.setAtIndex(JAVA_SHORT, i, Bf16.fromFloat((float) random.nextGaussian()));
            }
            long da = d.allocate(2L * m * k);
            long db = d.allocate(2L * n * k);
            long dc = d.allocate(4L * m * n);
            long ws = d.allocate(32L << 20);
            d.copyToDevice(da, a, 0, 2L * m * k);
            d.copyToDevice(db, b, 0, 2L * n * k);
            MemorySegment result = arena.allocate(CublasLt.HEURISTIC_RESULT_BYTES, 8);
            boolean found = lt.heuristic(handle, desc, aLayout, bLayout, cLayout, pref, result);
            report.check(found, "cublasLtMatmulAlgoGetHeuristic found an algorithm for BF16 x BF16 -> f32");
            if (!found) {
                return;
            }
            MemorySegment one = arena.allocateFrom(JAVA_FLOAT, 1f);
            MemorySegment zero = arena.allocateFrom(JAVA_FLOAT, 0f);
            lt.matmul(handle, desc, one, MemorySegment.ofAddress(da), aLayout, MemorySegment.ofAddress(db), bLayout, zero,
                    MemorySegment.ofAddress(dc), cLayout, result, MemorySegment.ofAddress(ws), 32L << 20, d.stream());
            MemorySegment c = d.allocateHost(4L * m * n);
            d.copyToHost(c, 0, dc, 4L * m * n);
            d.synchronize();
            double worst = 0;
            for (int j = 0; j < n; j++) {
                double diff = 0;
                double norm = 0;
                for (int i = 0; i < m; i++) {
                    double want = 0;
                    for (int p = 0; p < k; p++) {
                        want += (double) Bf16.toFloat(a.getAtIndex(JAVA_SHORT, (long) i * k + p))
                                * Bf16.toFloat(b.getAtIndex(JAVA_SHORT, (long) j * k + p));
                    }
                    double dd = c.getAtIndex(JAVA_FLOAT, (long) j * m + i) - want;
                    diff += dd * dd;
                    norm += want * want;
                }
                worst = Math.max(worst, Math.sqrt(diff / norm));
            }
            report.check(worst < 1e-4, String.format(Locale.ROOT, "y [%d, %d] = W [%d, %d] x: largest per-row relative "
                    + "error %.2g against double sums of the same BF16 values (< 1e-4: f32 accumulation)", n, m, m, k, worst));
        } catch (RuntimeException e) {
            report.check(false, "cuBLASLt GEMM: " + e);
        }
    }

    // ---- experts and engines ---------------------------------------------------------------------

    /** Every expert of the golden models on {@code backend} against the CPU backend. */
    void expertFfns(ComputeBackend backend, WorkerPool pool) throws IOException {
        report.section("Expert FFNs on the GPU against the CPU backend (golden models)");
        report.line("Tolerance %.0e per row (relative L2): weights and activations are BF16 on the GPU, 8 significant "
                + "bits, each value moving by up to 2^-9 of itself at each GEMM's input and output; the host emulation "
                + "of this path measures up to 9e-3.", FFN_TOLERANCE);
        for (String model : MODELS) {
            Path dir = golden.resolve(model);
            ModelConfig config = ModelConfig.load(dir);
            int hidden = config.hiddenSize();
            int maxRows = 16;
            // shared: the CPU backend reads the rows on its pool's threads
            try (Checkpoint ckpt = Checkpoint.open(dir); WeightLoader loader = new WeightLoader(ckpt, config);
                 Arena arena = Arena.ofShared()) {
                List<List<FfnWeights>> layers = new ArrayList<>();
                int maxFfn = 1;
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
                    for (FfnWeights w : experts) {
                        maxFfn = Math.max(maxFfn, w.ffn());
                    }
                    layers.add(experts);
                }
                FfnKernel gpu = backend.newFfn(maxRows, maxFfn);
                FfnKernel cpu = new CpuBackend(pool).newFfn(maxRows, maxFfn);
                for (List<FfnWeights> experts : layers) {
                    experts.forEach(gpu::prepare);
                }
                Random random = new Random(3);
                double worst = 0;
                int checked = 0;
                for (int li = 0; li < layers.size(); li++) {
                    List<FfnWeights> experts = layers.get(li);
                    int n = experts.size();
                    int[] rows = new int[n];
                    int total = 0;
                    for (int i = 0; i < n; i++) {
                        rows[i] = 1 + random.nextInt(maxRows);
                        total += rows[i];
                    }
                    MemorySegment x = arena.allocate(4L * total * hidden);
                    MemorySegment s = arena.allocate(4L * total);
                    for (long i = 0; i < (long) total * hidden; i++) {
                        x.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
                    }
                    for (int i = 0; i < total; i++) {
                        s.setAtIndex(JAVA_FLOAT, i, 0.1f + random.nextFloat());
                    }
                    MemorySegment a = arena.allocate(4L * total * hidden);
                    MemorySegment b = arena.allocate(4L * total * hidden);
                    FfnBatch ga = new FfnBatch(n);
                    FfnBatch cb = new FfnBatch(n);
                    int row = 0;
                    for (int i = 0; i < n; i++) {
                        ga.add(experts.get(i), x, row, rows[i], s, row, a, row);
                        cb.add(experts.get(i), x, row, rows[i], s, row, b, row);
                        row += rows[i];
                    }
                    gpu.runBatch(ga);
                    cpu.runBatch(cb);
                    for (int r = 0; r < total; r++) {
                        worst = Math.max(worst, rowError(a, b, r, hidden));
                        checked++;
                    }
                    // one expert alone, as an expert service runs it
                    MemorySegment single = arena.allocate(4L * rows[0] * hidden);
                    gpu.run(experts.getFirst(), x, 0, rows[0], null, 0, single, 0);
                    cpu.run(experts.getFirst(), x, 0, rows[0], null, 0, b, 0);
                    for (int r = 0; r < rows[0]; r++) {
                        worst = Math.max(worst, rowError(single, b, r, hidden));
                        checked++;
                    }
                }
                report.check(worst < FFN_TOLERANCE, String.format(Locale.ROOT, "%s: %d expert FFNs (%d MoE layers, all "
                        + "experts of a layer in one grouped call, plus one expert alone), %d rows: largest relative error "
                        + "%.3g (tolerance %.0e)", model, layers.size() * layers.getFirst().size(), layers.size(), checked,
                        worst, FFN_TOLERANCE));
            } catch (RuntimeException e) {
                report.check(false, model + " expert FFNs: " + e);
            }
        }
    }

    /** Engines on {@code device} against the reference logits and the CPU engine's greedy tokens. */
    void engines(String device) throws Exception {
        report.section("Engines with --device " + device + " against the reference logits and the CPU engine");
        report.line("Logits tolerance %.0e per row (relative L2) against the float64 reference; the CPU engine's own "
                + "error is shown beside it (its bound is 1e-4).", LOGITS_TOLERANCE);
        for (String model : MODELS) {
            Path dir = golden.resolve(model);
            try (Engine cpu = Engine.open(dir, EngineOptions.defaults().withThreads(2));
                 Engine gpu = Engine.open(dir, EngineOptions.defaults().withThreads(2).withBackend(device))) {
                for (GoldenCase c : goldenCases(dir)) {
                    double worstGpu = worst(gpu.prefillLogits(c.tokens()), c.logits());
                    double worstCpu = worst(cpu.prefillLogits(c.tokens()), c.logits());
                    report.check(worstGpu < LOGITS_TOLERANCE, String.format(Locale.ROOT, "%s %s (%d tokens): GPU experts "
                            + "%.3g, CPU %.2g (tolerance %.0e)", model, c.name(), c.tokens().length, worstGpu, worstCpu,
                            LOGITS_TOLERANCE));
                }
                int[] prompt = goldenCases(dir).getLast().tokens();
                GreedyComparison g = GreedyComparison.of(cpu, gpu, prompt, 32);
                report.check(g.equal() || g.referenceTop2Gap() < 0.05, model + " greedy, 32 tokens after the "
                        + prompt.length + "-token case, GPU experts against the CPU engine: " + g.describe());
                report.line("  CPU: %s", join(g.reference()));
                report.line("  GPU: %s", join(g.candidate()));
            } catch (RuntimeException e) {
                report.check(false, model + " engines: " + e);
            }
        }
    }

    // ---- NCCL ------------------------------------------------------------------------------------

    private void nccl(CudaLibraries libs) {
        report.section("NCCL: a one-rank communicator sending to itself");
        if (libs.nccl().isEmpty()) {
            report.check(false, "NCCL: " + libs.problems().get(CudaLibraries.NCCL));
            return;
        }
        Nccl nccl = libs.requireNccl();
        report.line("NCCL %s (%s). NCCL refuses two ranks on one GPU, so one GPU allows one rank: this checks the "
                + "communicator, the by-value unique id and grouped send/recv, not traffic between GPUs.",
                Nccl.versionString(nccl.version()), nccl.library().path());
        try (WorkerPool pool = new WorkerPool(1, "nccl");
             CudaBackend backend = (CudaBackend) new CudaBackendProvider().open(pool, index)) {
            CudaFfnDevice d = backend.device();
            int rows = 1000;
            int cols = 64;
            long bytes = 4L * rows * cols;
            MemorySegment host = d.allocateHost(bytes);
            for (long i = 0; i < (long) rows * cols; i++) {
                host.setAtIndex(JAVA_FLOAT, i, i * 0.5f);
            }
            long send = d.allocate(bytes);
            long recv = d.allocate(bytes);
            d.copyToDevice(send, host, 0, bytes);
            d.synchronize();
            long t0 = System.nanoTime();
            try (NcclExchange x = NcclExchange.join(nccl, nccl.uniqueId(), 1, 0)) {
                report.line("ncclCommInitRank (1 rank) in %.0f ms", (System.nanoTime() - t0) / 1e6);
                x.allToAll(send, recv, new ExchangePlan(new int[] {rows}, new int[] {rows}), cols, Nccl.FLOAT32, 4, d.stream());
                MemorySegment back = d.allocateHost(bytes);
                d.copyToHost(back, 0, recv, bytes);
                d.synchronize();
                report.check(back.mismatch(host) == -1, rows + " rows of " + cols + " f32 sent and received by rank 0 "
                        + "inside one NCCL group: " + (back.mismatch(host) == -1 ? "identical" : "differ at byte "
                        + back.mismatch(host)));
            }
        } catch (RuntimeException e) {
            report.check(false, "NCCL: " + e);
        }
    }

    // ---- benchmark -------------------------------------------------------------------------------

    private void benchmark() throws IOException {
        report.section("Expert FFN benchmark at RakutenAI-2.0-8x7B's shapes");
        report.line("hidden %d, intermediate %d, %d experts, each with the same number of tokens; one call = the "
                + "grouped path's device steps for all experts (BF16 conversion, grouped GEMM [gate; up], SiLU gating, "
                + "grouped GEMM down, scaling), timed with CUDA events, host copies excluded. TFLOP/s counts the GEMMs: "
                + "6 x tokens x hidden x intermediate per expert.", BENCH_HIDDEN, BENCH_FFN, BENCH_EXPERTS);
        StringBuilder json = new StringBuilder("[");
        try (WorkerPool pool = new WorkerPool(1, "bench");
             CudaBackend backend = (CudaBackend) new CudaBackendProvider().open(pool, index);
             Arena arena = Arena.ofConfined()) {
            CudaFfnDevice d = backend.device();
            Cudart cudart = d.cudart();
            long t0 = System.nanoTime();
            CudaKernels.Launch fill = d.kernels().launcher("moe_fill_uniform_bf16", 4, arena);
            DeviceFfn[] experts = new DeviceFfn[BENCH_EXPERTS];
            long matrix = (long) BENCH_HIDDEN * BENCH_FFN;
            for (int e = 0; e < BENCH_EXPERTS; e++) {
                long gateUp = d.allocate(2 * matrix * 2);
                long down = d.allocate(matrix * 2);
                fill.arg(0, gateUp).arg(1, 2 * matrix).arg(2, seed(e, 0)).argFloat(3, BENCH_WEIGHT_SCALE)
                        .launchOver(2 * matrix, d.stream());
                fill.arg(0, down).arg(1, matrix).arg(2, seed(e, 1)).argFloat(3, BENCH_WEIGHT_SCALE)
                        .launchOver(matrix, d.stream());
                experts[e] = new DeviceFfn(gateUp, down, BENCH_HIDDEN, BENCH_FFN);
            }
            int maxTokens = BENCH_TOKENS[BENCH_TOKENS.length - 1];
            ExpertFfnProgram program = new ExpertFfnProgram(d, new DeviceWeightStore(d), BENCH_HIDDEN, BENCH_FFN,
                    BENCH_EXPERTS * maxTokens, BENCH_EXPERTS);
            d.synchronize();
            report.line("weights (%.2f GB BF16) made on the device and workspace allocated in %.1f s; device arena %d MiB",
                    3.0 * matrix * 2 * BENCH_EXPERTS / 1e9, (System.nanoTime() - t0) / 1e9, d.deviceBytes() >> 20);
            MemorySegment x = arena.allocate(4L * BENCH_EXPERTS * maxTokens * BENCH_HIDDEN);
            Random random = new Random(1);
            for (long i = 0; i < (long) BENCH_EXPERTS * maxTokens * BENCH_HIDDEN; i++) {
                x.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            // correctness at these shapes: expert 0's first row against a CPU computation of the same BF16 weights
            int[] rowsOne = new int[BENCH_EXPERTS];
            Arrays.fill(rowsOne, 1);
            program.stage(experts, rowsOne, BENCH_EXPERTS, x);
            program.computeStaged();
            MemorySegment y = arena.allocate(4L * BENCH_EXPERTS * BENCH_HIDDEN);
            program.fetchStaged(y);
            double err = rowError(y, cpuExpertRow(x), 0, BENCH_HIDDEN);
            report.check(err < FFN_TOLERANCE, String.format(Locale.ROOT, "expert 0, one token, against a CPU computation "
                    + "with the same BF16 weights: relative error %.3g (tolerance %.0e)", err, FFN_TOLERANCE));

            report.line("");
            report.line("| tokens per expert | rows in the call | ms per call | TFLOP/s |");
            report.line("| ---: | ---: | ---: | ---: |");
            try (Event start = cudart.eventCreate(true); Event end = cudart.eventCreate(true)) {
                for (int tokens : BENCH_TOKENS) {
                    int[] rows = new int[BENCH_EXPERTS];
                    Arrays.fill(rows, tokens);
                    double flops = program.stage(experts, rows, BENCH_EXPERTS, x);
                    for (int i = 0; i < 3; i++) {
                        program.computeStaged();
                    }
                    d.synchronize();
                    int iterations = tokens >= 256 ? 20 : 50;
                    cudart.record(start, d.stream());
                    for (int i = 0; i < iterations; i++) {
                        program.computeStaged();
                    }
                    cudart.record(end, d.stream());
                    cudart.synchronize(end);
                    double ms = cudart.elapsedMillis(start, end) / iterations;
                    double tflops = flops / (ms * 1e-3) / 1e12;
                    report.line("| %d | %d | %.3f | %.1f |", tokens, tokens * BENCH_EXPERTS, ms, tflops);
                    json.append(json.length() > 1 ? "," : "").append(String.format(Locale.ROOT,
                            "{\"tokensPerExpert\":%d,\"ms\":%.5f,\"tflops\":%.3f}", tokens, ms, tflops));
                }
            }
            report.line("");
            report.line("Expert GEMMs: %s.", d.gemmPath());
        } catch (RuntimeException e) {
            report.check(false, "benchmark: " + e);
        }
        Files.writeString(out.resolve("bench-moe.json"), json.append("]\n").toString());
    }

    private static long seed(int expert, int matrix) {
        return 1000L * (expert + 1) + matrix;
    }

    /** Expert 0's output for the first row of x, on the CPU: f32 sums of the same BF16 weights and BF16 input. */
    private static MemorySegment cpuExpertRow(MemorySegment x) {
        int hidden = BENCH_HIDDEN;
        int ffn = BENCH_FFN;
        float[] xb = new float[hidden];
        for (int c = 0; c < hidden; c++) {
            xb[c] = Bf16.toFloat(Bf16.fromFloat(x.getAtIndex(JAVA_FLOAT, c)));
        }
        float[] h = new float[ffn];
        for (int j = 0; j < ffn; j++) {
            double g = 0;
            double u = 0;
            for (int c = 0; c < hidden; c++) {
                g += DeviceFill.value(seed(0, 0), (long) j * hidden + c, BENCH_WEIGHT_SCALE) * xb[c];
                u += DeviceFill.value(seed(0, 0), (long) (ffn + j) * hidden + c, BENCH_WEIGHT_SCALE) * xb[c];
            }
            h[j] = (float) (g / (1 + Math.exp(-g)) * u);
        }
        MemorySegment y = Arena.ofAuto().allocate(4L * hidden);
        for (int r = 0; r < hidden; r++) {
            double s = 0;
            for (int j = 0; j < ffn; j++) {
                s += DeviceFill.value(seed(0, 1), (long) r * ffn + j, BENCH_WEIGHT_SCALE) * h[j];
            }
            y.setAtIndex(JAVA_FLOAT, r, (float) s);
        }
        return y;
    }

    // ---- helpers and the script's small modes ----------------------------------------------------

    record GoldenCase(String name, int[] tokens, float[][] logits) {
    }

    static List<GoldenCase> goldenCases(Path dir) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Files.readString(dir.resolve("cases.json")));
        List<GoldenCase> cases = new ArrayList<>();
        for (JsonNode c : root.get("cases")) {
            JsonNode t = c.get("tokens");
            int[] tokens = new int[t.size()];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = t.get(i).asInt();
            }
            cases.add(new GoldenCase(c.get("name").asText(), tokens, NpyFile.readF32(dir.resolve(c.get("logits").asText()))));
        }
        return cases;
    }

    static GoldenCase goldenCase(Path golden, String model, String name) throws IOException {
        return goldenCases(golden.resolve(model)).stream().filter(c -> c.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no case " + name + " for " + model));
    }

    static int compareLogits(Path golden, String model, String name, Path npy, double tolerance, String label)
            throws IOException {
        GoldenCase c = goldenCase(golden, model, name);
        double worst = worst(NpyFile.readF32(npy), c.logits());
        boolean ok = worst < tolerance;
        System.out.printf(Locale.ROOT, "- %s %s %s %s (%d rows): largest per-row relative error %.3g against the "
                + "float64 reference (tolerance %.0e)%n", ok ? "PASS" : "**FAIL**", label, model, name, c.tokens().length,
                worst, tolerance);
        return ok ? 0 : 1;
    }

    static double worst(float[][] ours, float[][] reference) {
        if (ours.length != reference.length) {
            return Double.POSITIVE_INFINITY;
        }
        double worst = 0;
        for (int t = 0; t < ours.length; t++) {
            double diff = 0;
            double norm = 0;
            for (int i = 0; i < reference[t].length; i++) {
                double d = ours[t][i] - reference[t][i];
                diff += d * d;
                norm += (double) reference[t][i] * reference[t][i];
            }
            worst = Math.max(worst, Math.sqrt(diff / norm));
        }
        return worst;
    }

    static double rowError(MemorySegment ours, MemorySegment ref, int row, int cols) {
        double diff = 0;
        double norm = 0;
        for (int c = 0; c < cols; c++) {
            double a = ours.getAtIndex(JAVA_FLOAT, (long) row * cols + c);
            double b = ref.getAtIndex(JAVA_FLOAT, (long) row * cols + c);
            diff += (a - b) * (a - b);
            norm += b * b;
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    static String join(int[] tokens) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < tokens.length; i++) {
            b.append(i == 0 ? "" : ",").append(tokens[i]);
        }
        return b.toString();
    }

    static int benchTable(Path moe, Path torch) throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode ours = json.readTree(Files.readString(moe));
        JsonNode theirs = Files.exists(torch) ? json.readTree(Files.readString(torch)) : null;
        System.out.println("| tokens per expert | ours: ms | ours: TFLOP/s | torch.matmul: ms | torch.matmul: TFLOP/s "
                + "| torch FFN (matmul + silu): ms | torch FFN: TFLOP/s | ours / torch.matmul |");
        System.out.println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (JsonNode o : ours) {
            int t = o.get("tokensPerExpert").asInt();
            JsonNode m = null;
            if (theirs != null && theirs.has("results")) {
                for (JsonNode r : theirs.get("results")) {
                    if (r.get("tokensPerExpert").asInt() == t) {
                        m = r;
                    }
                }
            }
            System.out.printf(Locale.ROOT, "| %d | %.3f | %.1f | %s | %s | %s | %s | %s |%n", t, o.get("ms").asDouble(),
                    o.get("tflops").asDouble(),
                    m == null ? "-" : String.format(Locale.ROOT, "%.3f", m.get("matmulMs").asDouble()),
                    m == null ? "-" : String.format(Locale.ROOT, "%.1f", m.get("matmulTflops").asDouble()),
                    m == null ? "-" : String.format(Locale.ROOT, "%.3f", m.get("ffnMs").asDouble()),
                    m == null ? "-" : String.format(Locale.ROOT, "%.1f", m.get("ffnTflops").asDouble()),
                    m == null ? "-" : String.format(Locale.ROOT, "%.2f", o.get("tflops").asDouble()
                            / m.get("matmulTflops").asDouble()));
        }
        if (theirs != null && theirs.has("torch")) {
            System.out.println();
            System.out.println("PyTorch " + theirs.get("torch").asText() + " on " + theirs.path("device").asText("?") + ".");
        }
        return 0;
    }
}
