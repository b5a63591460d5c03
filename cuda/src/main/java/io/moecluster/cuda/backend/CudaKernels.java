package io.moecluster.cuda.backend;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.moecluster.cuda.bindings.Cudart;
import io.moecluster.cuda.bindings.Kernel;
import io.moecluster.cuda.bindings.KernelLibrary;
import io.moecluster.cuda.bindings.Nvrtc;
import io.moecluster.cuda.bindings.Stream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The project's CUDA C kernels, shipped as resources ({@code io/moecluster/cuda/kernels/*.cu}),
 * compiled by NVRTC on the machine that runs them, for its device's compute capability, and loaded
 * with {@code cudaLibraryLoadData}. {@link Launch} holds one kernel's argument buffers, so a launch
 * allocates nothing.
 */
public final class CudaKernels implements AutoCloseable {
    /** One source file and the {@code extern "C"} kernels it defines. */
    public record Source(String file, List<String> kernels) {
    }

    public static final List<Source> SOURCES = List.of(
            new Source("expert_ffn.cu", List.of("moe_f32_to_bf16", "moe_f16_to_bf16", "moe_silu_mul", "moe_scale_rows",
                    "moe_scale_accumulate")),
            new Source("rms_norm.cu", List.of("moe_rms_norm")),
            new Source("fill.cu", List.of("moe_fill_uniform_bf16")));
    /** NVRTC options besides the architecture. */
    public static final List<String> OPTIONS = List.of("--std=c++17");

    private final Cudart cudart;
    private final List<KernelLibrary> libraries;
    private final Map<String, Kernel> kernels;
    private final String target;

    private CudaKernels(Cudart cudart, List<KernelLibrary> libraries, Map<String, Kernel> kernels, String target) {
        this.cudart = cudart;
        this.libraries = libraries;
        this.kernels = kernels;
        this.target = target;
    }

    /** A shipped source's text. */
    public static String source(String file) {
        String resource = "/io/moecluster/cuda/kernels/" + file;
        try (InputStream in = CudaKernels.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("kernel source " + resource + " missing from the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every shipped source compiled for compute capability {@code ccMajor.ccMinor} (no device needed). */
    public static List<Nvrtc.Compiled> compileAll(Nvrtc nvrtc, Nvrtc.Output output, int ccMajor, int ccMinor) {
        List<Nvrtc.Compiled> all = new ArrayList<>();
        for (Source s : SOURCES) {
            all.add(nvrtc.compile(s.file(), source(s.file()), output, ccMajor, ccMinor, OPTIONS));
        }
        return all;
    }

    /** Compiles every source and loads it on the current device. */
    public static CudaKernels load(Cudart cudart, Nvrtc nvrtc, Nvrtc.Output output, int ccMajor, int ccMinor) {
        List<KernelLibrary> libraries = new ArrayList<>();
        Map<String, Kernel> kernels = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            List<Nvrtc.Compiled> compiled = compileAll(nvrtc, output, ccMajor, ccMinor);
            for (int i = 0; i < SOURCES.size(); i++) {
                KernelLibrary lib = cudart.loadLibrary(compiled.get(i).imageIn(arena));
                libraries.add(lib);
                for (String k : SOURCES.get(i).kernels()) {
                    kernels.put(k, cudart.kernel(lib, k));
                }
            }
        } catch (RuntimeException e) {
            libraries.forEach(KernelLibrary::close);
            throw e;
        }
        String target = (output == Nvrtc.Output.CUBIN ? "sm_" : "compute_") + ccMajor + ccMinor;
        return new CudaKernels(cudart, libraries, kernels, output + " " + target);
    }

    /** What was loaded, e.g. "CUBIN sm_90". */
    public String target() {
        return target;
    }

    /** A launcher of kernel {@code name} with {@code args} 8-byte argument slots, its memory from {@code arena}. */
    public Launch launcher(String name, int args, Arena arena) {
        Kernel k = kernels.get(name);
        if (k == null) {
            throw new IllegalArgumentException("no kernel " + name + "; loaded: " + kernels.keySet());
        }
        return new Launch(cudart, k, args, arena);
    }

    @Override
    public void close() {
        libraries.forEach(KernelLibrary::close);
    }

    /**
     * One kernel's launch: argument values in slots of 8 bytes (set by index), the {@code void*[]}
     * pointing at them, and the grid and block {@code dim3}s. Reused for every launch.
     */
    public static final class Launch {
        private final Cudart cudart;
        private final Kernel kernel;
        private final MemorySegment values;
        private final MemorySegment pointers;
        private final MemorySegment grid;
        private final MemorySegment block;

        Launch(Cudart cudart, Kernel kernel, int args, Arena arena) {
            this.cudart = cudart;
            this.kernel = kernel;
            this.values = arena.allocate(8L * args, 8);
            this.pointers = arena.allocate(ADDRESS, args);
            for (int i = 0; i < args; i++) {
                pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
            }
            this.grid = arena.allocate(Cudart.DIM3);
            this.block = arena.allocate(Cudart.DIM3);
        }

        /** A pointer or {@code long long} argument. */
        public Launch arg(int i, long value) {
            values.set(JAVA_LONG, 8L * i, value);
            return this;
        }

        /** An {@code int} argument. */
        public Launch argInt(int i, int value) {
            values.set(JAVA_INT, 8L * i, value);
            return this;
        }

        /** A {@code float} argument. */
        public Launch argFloat(int i, float value) {
            values.set(JAVA_FLOAT, 8L * i, value);
            return this;
        }

        /** Launches {@code gridX} blocks of {@code blockX} threads on {@code stream}. */
        public void launch(int gridX, int blockX, Stream stream) {
            grid.set(JAVA_INT, 0, gridX);
            grid.set(JAVA_INT, 4, 1);
            grid.set(JAVA_INT, 8, 1);
            block.set(JAVA_INT, 0, blockX);
            block.set(JAVA_INT, 4, 1);
            block.set(JAVA_INT, 8, 1);
            cudart.launch(kernel, grid, block, pointers, 0, stream);
        }

        /** Enough blocks of 256 threads for a grid-stride loop over {@code n} elements. */
        public void launchOver(long n, Stream stream) {
            launch((int) Math.max(1, Math.min((n + 255) / 256, 1L << 16)), 256, stream);
        }
    }
}
