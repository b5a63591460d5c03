package io.moecluster.cuda.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * NVRTC ({@code libnvrtc.so.12}/{@code .13}, with its {@code libnvrtc-builtins} loaded first): compiles
 * CUDA C to PTX or to CUBIN for one architecture, on the host, without a GPU.
 */
public final class Nvrtc {
    /** What a compilation produces. */
    public enum Output {
        /** Machine code for one real architecture ({@code sm_XY}): loads on any driver of the same major. */
        CUBIN,
        /** Virtual-architecture assembly ({@code compute_XY}), compiled by the driver when loaded. */
        PTX
    }

    /** A compiled program: the image to load and NVRTC's log (empty when it had nothing to say). */
    public record Compiled(String name, Output output, String arch, byte[] image, String log) {
        /** The image as native memory for {@code cudaLibraryLoadData} (PTX keeps its NUL terminator). */
        public MemorySegment imageIn(Arena arena) {
            MemorySegment s = arena.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, s, JAVA_BYTE, 0, image.length);
            s.set(JAVA_BYTE, image.length, (byte) 0);
            return s;
        }
    }

    private final NativeLibrary lib;
    private final MethodHandle version;
    private final MethodHandle getNumSupportedArchs;
    private final MethodHandle getSupportedArchs;
    private final MethodHandle createProgram;
    private final MethodHandle destroyProgram;
    private final MethodHandle compileProgram;
    private final MethodHandle getProgramLogSize;
    private final MethodHandle getProgramLog;
    private final MethodHandle getPtxSize;
    private final MethodHandle getPtx;
    private final MethodHandle getCubinSize;
    private final MethodHandle getCubin;
    private final MethodHandle getErrorString;

    public Nvrtc(NativeLibrary lib) {
        this.lib = lib;
        FunctionDescriptor progSize = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
        version = lib.bind("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getNumSupportedArchs = lib.bind("nvrtcGetNumSupportedArchs", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getSupportedArchs = lib.bind("nvrtcGetSupportedArchs", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        createProgram = lib.bind("nvrtcCreateProgram",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        destroyProgram = lib.bind("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        compileProgram = lib.bind("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        getProgramLogSize = lib.bind("nvrtcGetProgramLogSize", progSize);
        getProgramLog = lib.bind("nvrtcGetProgramLog", progSize);
        getPtxSize = lib.bind("nvrtcGetPTXSize", progSize);
        getPtx = lib.bind("nvrtcGetPTX", progSize);
        getCubinSize = lib.bind("nvrtcGetCUBINSize", progSize);
        getCubin = lib.bind("nvrtcGetCUBIN", progSize);
        getErrorString = lib.bind("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    public NativeLibrary library() {
        return lib;
    }

    /** {major, minor}. */
    public int[] version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT);
            MemorySegment minor = a.allocate(JAVA_INT);
            check("nvrtcVersion", (int) version.invokeExact(major, minor), null);
            return new int[] {major.get(JAVA_INT, 0), minor.get(JAVA_INT, 0)};
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /** The real architectures it compiles for, as numbers like 90 for sm_90. */
    public int[] supportedArchs() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check("nvrtcGetNumSupportedArchs", (int) getNumSupportedArchs.invokeExact(n), null);
            MemorySegment archs = a.allocate(JAVA_INT, Math.max(1, n.get(JAVA_INT, 0)));
            check("nvrtcGetSupportedArchs", (int) getSupportedArchs.invokeExact(archs), null);
            return archs.asSlice(0, (long) n.get(JAVA_INT, 0) * 4).toArray(JAVA_INT);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    /**
     * Compiles {@code source} for compute capability {@code ccMajor.ccMinor} ({@code sm_XY} for
     * CUBIN, {@code compute_XY} for PTX) with {@code extraOptions}. A compile error fails with
     * NVRTC's log as the message.
     */
    public Compiled compile(String name, String source, Output output, int ccMajor, int ccMinor, List<String> extraOptions) {
        String arch = (output == Output.CUBIN ? "sm_" : "compute_") + ccMajor + ccMinor;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment progOut = a.allocate(ADDRESS);
            check("nvrtcCreateProgram(" + name + ")", (int) createProgram.invokeExact(progOut, a.allocateFrom(source),
                    a.allocateFrom(name), 0, MemorySegment.NULL, MemorySegment.NULL), null);
            MemorySegment prog = progOut.get(ADDRESS, 0);
            if (prog.address() == 0) {
                throw new IllegalStateException("nvrtcCreateProgram(" + name + ") returned success but NULL");
            }
            try {
                List<String> options = new ArrayList<>();
                options.add("--gpu-architecture=" + arch);
                options.addAll(extraOptions);
                MemorySegment optv = a.allocate(ADDRESS, options.size());
                for (int i = 0; i < options.size(); i++) {
                    optv.setAtIndex(ADDRESS, i, a.allocateFrom(options.get(i)));
                }
                int status = (int) compileProgram.invokeExact(prog, options.size(), optv);
                String log = log(prog, a);
                check("nvrtcCompileProgram(" + name + ", " + arch + ")", status, log);
                byte[] image = output == Output.CUBIN ? bytes(prog, a, getCubinSize, getCubin, "nvrtcGetCUBIN")
                        : bytes(prog, a, getPtxSize, getPtx, "nvrtcGetPTX");
                if (output == Output.PTX && image.length > 0 && image[image.length - 1] == 0) {
                    image = Arrays.copyOf(image, image.length - 1);
                }
                return new Compiled(name, output, arch, image, log);
            } finally {
                progOut.set(ADDRESS, 0, prog);
                check("nvrtcDestroyProgram", (int) destroyProgram.invokeExact(progOut), null);
            }
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }

    private String log(MemorySegment prog, Arena a) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check("nvrtcGetProgramLogSize", (int) getProgramLogSize.invokeExact(prog, size), null);
        long n = size.get(JAVA_LONG, 0);
        if (n <= 1) {
            return "";
        }
        MemorySegment buf = a.allocate(n);
        check("nvrtcGetProgramLog", (int) getProgramLog.invokeExact(prog, buf), null);
        return buf.getString(0).strip();
    }

    private byte[] bytes(MemorySegment prog, Arena a, MethodHandle sizeOf, MethodHandle get, String call) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check(call + "Size", (int) sizeOf.invokeExact(prog, size), null);
        long n = size.get(JAVA_LONG, 0);
        MemorySegment buf = a.allocate(Math.max(1, n));
        check(call, (int) get.invokeExact(prog, buf), null);
        return buf.asSlice(0, n).toArray(JAVA_BYTE);
    }

    /** An {@code nvrtcResult} as an exception; NVRTC names its errors itself, the message is the log when there is one. */
    void check(String call, int status, String log) {
        if (status != 0) {
            throw new CudaException(call, status, errorString(status), log);
        }
    }

    public String errorString(int status) {
        try {
            return Cudart.cString((MemorySegment) getErrorString.invokeExact(status), "nvrtcResult " + status);
        } catch (Throwable t) {
            throw Cudart.rethrow(t);
        }
    }
}
