package io.moecluster.cuda.backend;

import io.moecluster.cuda.bindings.Cublas;
import io.moecluster.cuda.bindings.CublasHandle;
import io.moecluster.cuda.bindings.CudaException;
import io.moecluster.cuda.bindings.CudaLibraries;
import io.moecluster.cuda.bindings.Cudart;
import io.moecluster.cuda.bindings.DeviceAttribute;
import io.moecluster.cuda.bindings.DeviceMemory;
import io.moecluster.cuda.bindings.Nvrtc;
import io.moecluster.cuda.bindings.PinnedMemory;
import io.moecluster.cuda.bindings.Stream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One GPU as an {@link FfnDevice}: a stream, a cuBLAS handle with its own workspace, the project's
 * kernels compiled by NVRTC for this device, and a device arena: device memory is taken in chunks
 * of at least {@value #ARENA_CHUNK_MIB} MiB at start-up and handed out 256-byte aligned, never freed
 * before the device is closed.
 *
 * <p>The CUDA runtime's current device is per host thread: {@link #bind()} makes this one current,
 * and every public entry of the backend calls it.
 */
public final class CudaFfnDevice implements FfnDevice {
    private static final Logger LOG = LoggerFactory.getLogger(CudaFfnDevice.class);
    static final int ARENA_CHUNK_MIB = 256;
    static final long CUBLAS_WORKSPACE = 32L << 20;

    private final Cudart cudart;
    private final Cublas cublas;
    private final int index;
    private final Stream stream;
    private final CublasHandle handle;
    private final DeviceMemory cublasWorkspace;
    private final CudaKernels kernels;
    private final Arena arena = Arena.ofShared();
    private final CudaKernels.Launch f32ToBf16;
    private final CudaKernels.Launch f16ToBf16;
    private final CudaKernels.Launch siluMul;
    private final CudaKernels.Launch scaleRows;
    private final List<DeviceMemory> chunks = new ArrayList<>();
    private final List<PinnedMemory> pinned = new ArrayList<>();
    private final String description;
    private volatile String groupedRefused;
    private long chunkNext;
    private long chunkEnd;
    private long deviceBytes;

    /** Opens device {@code index}: stream, cuBLAS handle, kernels (compiled now). Closes what it opened on failure. */
    public CudaFfnDevice(CudaLibraries libs, int index) {
        this.cudart = libs.requireCudart();
        this.cublas = libs.requireCublas();
        Nvrtc nvrtc = libs.requireNvrtc();
        this.index = index;
        cudart.setDevice(index);
        int ccMajor = cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MAJOR, index);
        int ccMinor = cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MINOR, index);
        Nvrtc.Output output = KernelTarget.choose(nvrtc.version(), cudart.driverVersion());
        Stream s = null;
        CublasHandle h = null;
        DeviceMemory ws = null;
        CudaKernels k = null;
        try {
            s = cudart.streamCreate();
            h = cublas.create();
            ws = cudart.malloc(CUBLAS_WORKSPACE);
            cublas.setStream(h, s);
            cublas.setWorkspace(h, ws);
            k = CudaKernels.load(cudart, nvrtc, output, ccMajor, ccMinor);
        } catch (RuntimeException e) {
            closeAll(k, ws, h, s);
            arena.close();
            throw e;
        }
        this.stream = s;
        this.handle = h;
        this.cublasWorkspace = ws;
        this.kernels = k;
        this.f32ToBf16 = kernels.launcher("moe_f32_to_bf16", 3, arena);
        this.f16ToBf16 = kernels.launcher("moe_f16_to_bf16", 3, arena);
        this.siluMul = kernels.launcher("moe_silu_mul", 4, arena);
        this.scaleRows = kernels.launcher("moe_scale_rows", 5, arena);
        long[] mem = cudart.memoryInfo();
        this.description = "GPU " + index + " (" + cudart.pciBusId(index) + ", compute capability " + ccMajor + "."
                + ccMinor + ", " + cudart.attribute(DeviceAttribute.MULTIPROCESSOR_COUNT, index) + " SMs, "
                + mem[1] / (1L << 20) + " MiB), CUDA runtime " + Cudart.versionString(cudart.runtimeVersion())
                + ", driver " + Cudart.versionString(cudart.driverVersion()) + ", cuBLAS "
                + String.join(".", Arrays.stream(cublas.version()).mapToObj(String::valueOf).toList())
                + (cublas.hasGroupedGemm() ? " (grouped GEMM)" : " (no grouped GEMM: one GEMM per expert)")
                + ", kernels " + KernelTarget.explain(output, nvrtc.version(), cudart.driverVersion(), ccMajor, ccMinor);
    }

    private static void closeAll(AutoCloseable... resources) {
        for (AutoCloseable r : resources) {
            if (r != null) {
                try {
                    r.close();
                } catch (Exception ignored) {
                    // closing what a failed start opened; the start's failure is what is reported
                }
            }
        }
    }

    /** Makes this device current for the calling thread. */
    @Override
    public void bind() {
        cudart.setDevice(index);
    }

    public Cudart cudart() {
        return cudart;
    }

    public Cublas cublas() {
        return cublas;
    }

    public CublasHandle cublasHandle() {
        return handle;
    }

    public Stream stream() {
        return stream;
    }

    public CudaKernels kernels() {
        return kernels;
    }

    public int index() {
        return index;
    }

    /** Device bytes taken by the arena so far. */
    public synchronized long deviceBytes() {
        return deviceBytes;
    }

    @Override
    public synchronized long allocate(long bytes) {
        long size = (bytes + 255) & ~255L;
        if (chunkNext + size > chunkEnd) {
            long chunk = Math.max(size, (long) ARENA_CHUNK_MIB << 20);
            DeviceMemory m = cudart.malloc(chunk);
            chunks.add(m);
            chunkNext = m.address();
            chunkEnd = chunkNext + chunk;
            deviceBytes += chunk;
        }
        long at = chunkNext;
        chunkNext += size;
        return at;
    }

    @Override
    public synchronized MemorySegment allocateHost(long bytes) {
        PinnedMemory p = cudart.mallocHost(bytes);
        pinned.add(p);
        return p.segment();
    }

    @Override
    public void copyToDevice(long dst, MemorySegment src, long srcOffset, long bytes) {
        cudart.memcpyAsync(MemorySegment.ofAddress(dst), src.asSlice(srcOffset, bytes), bytes, Cudart.MEMCPY_HOST_TO_DEVICE,
                stream);
    }

    @Override
    public void copyToHost(MemorySegment dst, long dstOffset, long src, long bytes) {
        cudart.memcpyAsync(dst.asSlice(dstOffset, bytes), MemorySegment.ofAddress(src), bytes, Cudart.MEMCPY_DEVICE_TO_HOST,
                stream);
    }

    @Override
    public void f32ToBf16(long src, long dst, long n) {
        f32ToBf16.arg(0, src).arg(1, dst).arg(2, n).launchOver(n, stream);
    }

    @Override
    public void f16ToBf16(long src, long dst, long n) {
        f16ToBf16.arg(0, src).arg(1, dst).arg(2, n).launchOver(n, stream);
    }

    @Override
    public void groupedGemm(GroupedGemm g, long devicePointers) {
        if (g.count() == 0) {
            return;
        }
        if (cublas.hasGroupedGemm() && groupedRefused == null) {
            long cap = g.capacity();
            try {
                cublas.gemmGroupedBatchedEx(handle, g.transa(), g.transb(), g.m(), g.n(), g.k(), g.alpha(),
                        MemorySegment.ofAddress(devicePointers), Cublas.R_16BF, g.lda(),
                        MemorySegment.ofAddress(devicePointers + 8 * cap), Cublas.R_16BF, g.ldb(), g.beta(),
                        MemorySegment.ofAddress(devicePointers + 16 * cap), Cublas.R_16BF, g.ldc(), g.count(),
                        g.groupSize());
                return;
            } catch (CudaException e) {
                // NOT_SUPPORTED (15) or INVALID_VALUE (7): this cuBLAS will not do these types grouped;
                // every GEMM on its own does the same arithmetic, so carry on that way and say so.
                if (e.status() != 15 && e.status() != 7) {
                    throw e;
                }
                groupedRefused = e.getMessage();
                LOG.warn("grouped GEMM refused, running one cublasGemmEx per expert from now on: {}", groupedRefused);
            }
        }
        for (int i = 0; i < g.count(); i++) {
            cublas.gemmEx(handle, g.opA(i), g.opB(i), g.m(i), g.n(i), g.k(i), g.alpha().asSlice(4L * i, 4),
                    MemorySegment.ofAddress(g.a(i)), Cublas.R_16BF, g.lda(i), MemorySegment.ofAddress(g.b(i)), Cublas.R_16BF,
                    g.ldb(i), g.beta().asSlice(4L * i, 4), MemorySegment.ofAddress(g.c(i)), Cublas.R_16BF, g.ldc(i));
        }
    }

    /** How the expert GEMMs run: one grouped call per projection, or one GEMM per expert and why. */
    public String gemmPath() {
        if (!cublas.hasGroupedGemm()) {
            return "one cublasGemmEx per expert (this cuBLAS has no cublasGemmGroupedBatchedEx)";
        }
        String refused = groupedRefused;
        return refused == null ? "one cublasGemmGroupedBatchedEx per projection for all experts"
                : "one cublasGemmEx per expert (grouped refused: " + refused + ")";
    }

    @Override
    public void siluMul(long gu, long h, int rows, int ffn) {
        siluMul.arg(0, gu).arg(1, h).argInt(2, rows).argInt(3, ffn).launchOver((long) rows * ffn, stream);
    }

    @Override
    public void scaleRows(long y, long scales, long out, int rows, int cols) {
        scaleRows.arg(0, y).arg(1, scales).arg(2, out).argInt(3, rows).argInt(4, cols).launchOver((long) rows * cols, stream);
    }

    @Override
    public void synchronize() {
        cudart.synchronize(stream);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public synchronized void close() {
        bind();
        try {
            cudart.synchronize(stream);
        } finally {
            kernels.close();
            handle.close();
            cublasWorkspace.close();
            stream.close();
            pinned.forEach(PinnedMemory::close);
            chunks.forEach(DeviceMemory::close);
            pinned.clear();
            chunks.clear();
            arena.close();
        }
    }
}
