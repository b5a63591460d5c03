package io.moecluster.cuda.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * cuBLAS ({@code libcublas.so.12}/{@code .13}, loaded after its {@code libcublasLt}): handles, their
 * stream and workspace, {@code cublasGemmEx} and {@code cublasGemmGroupedBatchedEx} (cuBLAS 12.5+:
 * GEMMs of different shapes in one call, all experts of a layer at once). Column-major, as cuBLAS is.
 */
public final class Cublas {
    public static final int OP_N = 0;
    public static final int OP_T = 1;
    /** cudaDataType_t. */
    public static final int R_32F = 0;
    public static final int R_16F = 2;
    public static final int R_16BF = 14;
    /** cublasComputeType_t: f32 accumulation. */
    public static final int COMPUTE_32F = 68;
    public static final int GEMM_DEFAULT = -1;
    /** libraryPropertyType. */
    static final int MAJOR_VERSION = 0;
    static final int MINOR_VERSION = 1;
    static final int PATCH_LEVEL = 2;
    /** CUBLAS_STATUS_NOT_INITIALIZED: what {@code cublasCreate} answers without a device. */
    public static final int STATUS_NOT_INITIALIZED = 1;

    private final NativeLibrary lib;
    private final MethodHandle create;
    private final MethodHandle destroy;
    private final MethodHandle setStream;
    private final MethodHandle setWorkspace;
    private final MethodHandle getProperty;
    private final MethodHandle getStatusName;
    private final MethodHandle getStatusString;
    private final MethodHandle gemmEx;
    private final Optional<MethodHandle> gemmGroupedBatchedEx;

    public Cublas(NativeLibrary lib) {
        this.lib = lib;
        create = lib.bind("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = lib.bind("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        setStream = lib.bind("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        setWorkspace = lib.bind("cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        getProperty = lib.bind("cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        getStatusName = lib.bind("cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getStatusString = lib.bind("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        gemmEx = lib.bind("cublasGemmEx", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        gemmGroupedBatchedEx = lib.bindOptional("cublasGemmGroupedBatchedEx", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT));
    }

    public NativeLibrary library() {
        return lib;
    }

    /** {major, minor, patch} from {@code cublasGetProperty} (no handle, so no device, needed). */
    public int[] version() {
        return new int[] {property(MAJOR_VERSION), property(MINOR_VERSION), property(PATCH_LEVEL)};
    }

    private int property(int type) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check("cublasGetProperty", (int) getProperty.invokeExact(type, out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code cublasCreate}: a handle on the current device (fails without one: CUBLAS_STATUS_NOT_INITIALIZED). */
    public CublasHandle create() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasCreate_v2", (int) create.invokeExact(out));
            return new CublasHandle(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    void destroy(MemorySegment h) {
        try {
            check("cublasDestroy_v2", (int) destroy.invokeExact(h));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    public void setStream(CublasHandle h, Stream s) {
        try {
            check("cublasSetStream_v2", (int) setStream.invokeExact(h.ptr(), s.ptr()));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** Gives the handle its own workspace, so that no GEMM allocates device memory behind our back. */
    public void setWorkspace(CublasHandle h, DeviceMemory workspace) {
        try {
            check("cublasSetWorkspace_v2", (int) setWorkspace.invokeExact(h.ptr(), workspace.at(0), workspace.bytes()));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /**
     * {@code C = alpha op(A) op(B) + beta C} ({@code cublasGemmEx}, column-major); alpha and beta
     * are host f32 (compute type {@link #COMPUTE_32F}).
     */
    public void gemmEx(CublasHandle h, int transa, int transb, int m, int n, int k, MemorySegment alpha,
                       MemorySegment a, int aType, int lda, MemorySegment b, int bType, int ldb, MemorySegment beta,
                       MemorySegment c, int cType, int ldc) {
        try {
            check("cublasGemmEx", (int) gemmEx.invokeExact(h.ptr(), transa, transb, m, n, k, alpha, a, aType, lda,
                    b, bType, ldb, beta, c, cType, ldc, COMPUTE_32F, GEMM_DEFAULT));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** Whether this cuBLAS has {@code cublasGemmGroupedBatchedEx} (12.5 and newer). */
    public boolean hasGroupedGemm() {
        return gemmGroupedBatchedEx.isPresent();
    }

    /**
     * {@code cublasGemmGroupedBatchedEx}: {@code groupCount} groups, group i being {@code groupSize[i]}
     * GEMMs of one shape. The shape, transpose, leading-dimension, alpha, beta and group-size arrays
     * are host memory; {@code aArray}, {@code bArray}, {@code cArray} are device arrays of device
     * pointers, one per GEMM.
     */
    public void gemmGroupedBatchedEx(CublasHandle h, MemorySegment transa, MemorySegment transb, MemorySegment m,
                                     MemorySegment n, MemorySegment k, MemorySegment alpha, MemorySegment aArray,
                                     int aType, MemorySegment lda, MemorySegment bArray, int bType, MemorySegment ldb,
                                     MemorySegment beta, MemorySegment cArray, int cType, MemorySegment ldc,
                                     int groupCount, MemorySegment groupSize) {
        MethodHandle g = gemmGroupedBatchedEx.orElseThrow(() -> new IllegalStateException(
                "cublasGemmGroupedBatchedEx not found in " + lib.path() + " (cuBLAS 12.5 or newer has it)"));
        try {
            check("cublasGemmGroupedBatchedEx", (int) g.invokeExact(h.ptr(), transa, transb, m, n, k, alpha, aArray,
                    aType, lda, bArray, bType, ldb, beta, cArray, cType, ldc, groupCount, groupSize, COMPUTE_32F));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** A {@code cublasStatus_t} as an exception naming the call, the status name and message. */
    public void check(String call, int status) {
        if (status != 0) {
            throw new CudaException(call, status, statusName(status), statusString(status));
        }
    }

    public String statusName(int status) {
        try {
            return Cudart.cString((MemorySegment) getStatusName.invokeExact(status), "cublasStatus " + status);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    public String statusString(int status) {
        try {
            return Cudart.cString((MemorySegment) getStatusString.invokeExact(status), "");
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }
}
