package io.moecluster.cuda.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuBLASLt ({@code libcublasLt.so.12}/{@code .13}): matmul descriptors, matrix layouts, preferences,
 * the heuristic and {@code cublasLtMatmul}, e.g. a BF16 GEMM with f32 accumulation. The descriptors
 * are host objects and need no device; the handle does. cuBLASLt does not check its handle: a NULL
 * one crashes the process, which the typed, non-NULL, close-checked handles here rule out.
 */
public final class CublasLt {
    /** cublasLtMatmulDescAttributes_t. */
    public static final int MATMUL_DESC_TRANSA = 3;
    public static final int MATMUL_DESC_TRANSB = 4;
    /** cublasLtMatmulPreferenceAttributes_t. */
    public static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** sizeof(cublasLtMatmulHeuristicResult_t): algo (64 bytes), workspaceSize, state, wavesCount, reserved[4]. */
    public static final long HEURISTIC_RESULT_BYTES = 96;
    /** Offset of {@code state} (a cublasStatus_t) in a heuristic result. */
    public static final long HEURISTIC_STATE_OFFSET = 72;

    private final NativeLibrary lib;
    private final MethodHandle create;
    private final MethodHandle destroy;
    private final MethodHandle getVersion;
    private final MethodHandle getCudartVersion;
    private final MethodHandle getStatusName;
    private final MethodHandle getStatusString;
    private final MethodHandle descCreate;
    private final MethodHandle descDestroy;
    private final MethodHandle descSetAttribute;
    private final MethodHandle layoutCreate;
    private final MethodHandle layoutDestroy;
    private final MethodHandle preferenceCreate;
    private final MethodHandle preferenceDestroy;
    private final MethodHandle preferenceSetAttribute;
    private final MethodHandle heuristic;
    private final MethodHandle matmul;

    public CublasLt(NativeLibrary lib) {
        this.lib = lib;
        FunctionDescriptor intOfPtr = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        create = lib.bind("cublasLtCreate", intOfPtr);
        destroy = lib.bind("cublasLtDestroy", intOfPtr);
        getVersion = lib.bind("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        getCudartVersion = lib.bind("cublasLtGetCudartVersion", FunctionDescriptor.of(JAVA_LONG));
        getStatusName = lib.bind("cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getStatusString = lib.bind("cublasLtGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        descCreate = lib.bind("cublasLtMatmulDescCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        descDestroy = lib.bind("cublasLtMatmulDescDestroy", intOfPtr);
        descSetAttribute = lib.bind("cublasLtMatmulDescSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        layoutCreate = lib.bind("cublasLtMatrixLayoutCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        layoutDestroy = lib.bind("cublasLtMatrixLayoutDestroy", intOfPtr);
        preferenceCreate = lib.bind("cublasLtMatmulPreferenceCreate", intOfPtr);
        preferenceDestroy = lib.bind("cublasLtMatmulPreferenceDestroy", intOfPtr);
        preferenceSetAttribute = lib.bind("cublasLtMatmulPreferenceSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        heuristic = lib.bind("cublasLtMatmulAlgoGetHeuristic", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        matmul = lib.bind("cublasLtMatmul", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
    }

    public NativeLibrary library() {
        return lib;
    }

    /** {@code cublasLtGetVersion}: e.g. 120604 for 12.6.4. */
    public long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** The CUDA runtime version it was built against, e.g. 12060. */
    public long cudartVersion() {
        try {
            return (long) getCudartVersion.invokeExact();
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code cublasLtCreate}: needs a device. */
    public CublasLtHandle create() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasLtCreate", (int) create.invokeExact(out));
            return new CublasLtHandle(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** A matmul descriptor (host object): compute type (e.g. {@link Cublas#COMPUTE_32F}) and scale type ({@link Cublas#R_32F}). */
    public MatmulDesc matmulDesc(int computeType, int scaleType) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasLtMatmulDescCreate", (int) descCreate.invokeExact(out, computeType, scaleType));
            return new MatmulDesc(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** Sets an int32 attribute of a matmul descriptor, e.g. {@link #MATMUL_DESC_TRANSA} to {@link Cublas#OP_T}. */
    public void setInt(MatmulDesc desc, int attribute, int value) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocateFrom(JAVA_INT, value);
            check("cublasLtMatmulDescSetAttribute(" + attribute + ")",
                    (int) descSetAttribute.invokeExact(desc.ptr(), attribute, v, 4L));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** A column-major matrix layout (host object) of {@code type} ({@link Cublas#R_16BF}...). */
    public MatrixLayout layout(int type, long rows, long cols, long ld) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasLtMatrixLayoutCreate", (int) layoutCreate.invokeExact(out, type, rows, cols, ld));
            return new MatrixLayout(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** A matmul preference (host object) allowing {@code workspaceBytes} of workspace. */
    public MatmulPreference preference(long workspaceBytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cublasLtMatmulPreferenceCreate", (int) preferenceCreate.invokeExact(out));
            MatmulPreference p = new MatmulPreference(this, out.get(ADDRESS, 0));
            try {
                MemorySegment v = a.allocateFrom(JAVA_LONG, workspaceBytes);
                check("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
                        (int) preferenceSetAttribute.invokeExact(p.ptr(), PREF_MAX_WORKSPACE_BYTES, v, 8L));
            } catch (RuntimeException e) {
                p.close();
                throw e;
            }
            return p;
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /**
     * The best algorithm for {@code D = alpha op(A) op(B) + beta C} (D laid out as C) into
     * {@code result} ({@link #HEURISTIC_RESULT_BYTES} bytes); false when none fits.
     */
    public boolean heuristic(CublasLtHandle h, MatmulDesc desc, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                             MatmulPreference pref, MemorySegment result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            check("cublasLtMatmulAlgoGetHeuristic", (int) heuristic.invokeExact(h.ptr(), desc.ptr(), a.ptr(), b.ptr(),
                    c.ptr(), c.ptr(), pref.ptr(), 1, result, count));
            return count.get(JAVA_INT, 0) > 0;
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** {@code cublasLtMatmul} with D = C (in place) and the algorithm of a heuristic {@code result}. */
    public void matmul(CublasLtHandle h, MatmulDesc desc, MemorySegment alpha, MemorySegment a, MatrixLayout aLayout,
                       MemorySegment b, MatrixLayout bLayout, MemorySegment beta, MemorySegment c, MatrixLayout cLayout,
                       MemorySegment result, MemorySegment workspace, long workspaceBytes, Stream stream) {
        try {
            check("cublasLtMatmul", (int) matmul.invokeExact(h.ptr(), desc.ptr(), alpha, a, aLayout.ptr(), b,
                    bLayout.ptr(), beta, c, cLayout.ptr(), c, cLayout.ptr(), result, workspace, workspaceBytes,
                    stream.ptr()));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    void destroyHandle(MemorySegment p) {
        call("cublasLtDestroy", destroy, p);
    }

    void destroyDesc(MemorySegment p) {
        call("cublasLtMatmulDescDestroy", descDestroy, p);
    }

    void destroyLayout(MemorySegment p) {
        call("cublasLtMatrixLayoutDestroy", layoutDestroy, p);
    }

    void destroyPreference(MemorySegment p) {
        call("cublasLtMatmulPreferenceDestroy", preferenceDestroy, p);
    }

    private void call(String name, MethodHandle h, MemorySegment p) {
        try {
            check(name, (int) h.invokeExact(p));
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

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

    /** A {@code cublasLtHandle_t}; {@code cublasLtDestroy} on close. */
    public static final class CublasLtHandle extends NativeHandle {
        private final CublasLt lt;

        CublasLtHandle(CublasLt lt, MemorySegment ptr) {
            super("cublasLtHandle_t", ptr);
            this.lt = lt;
        }

        @Override
        protected void destroy(MemorySegment p) {
            lt.destroyHandle(p);
        }
    }

    /** A {@code cublasLtMatmulDesc_t}; destroyed on close. */
    public static final class MatmulDesc extends NativeHandle {
        private final CublasLt lt;

        MatmulDesc(CublasLt lt, MemorySegment ptr) {
            super("cublasLtMatmulDesc_t", ptr);
            this.lt = lt;
        }

        @Override
        protected void destroy(MemorySegment p) {
            lt.destroyDesc(p);
        }
    }

    /** A {@code cublasLtMatrixLayout_t}; destroyed on close. */
    public static final class MatrixLayout extends NativeHandle {
        private final CublasLt lt;

        MatrixLayout(CublasLt lt, MemorySegment ptr) {
            super("cublasLtMatrixLayout_t", ptr);
            this.lt = lt;
        }

        @Override
        protected void destroy(MemorySegment p) {
            lt.destroyLayout(p);
        }
    }

    /** A {@code cublasLtMatmulPreference_t}; destroyed on close. */
    public static final class MatmulPreference extends NativeHandle {
        private final CublasLt lt;

        MatmulPreference(CublasLt lt, MemorySegment ptr) {
            super("cublasLtMatmulPreference_t", ptr);
            this.lt = lt;
        }

        @Override
        protected void destroy(MemorySegment p) {
            lt.destroyPreference(p);
        }
    }
}
