package io.moecluster.cuda.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The CUDA runtime ({@code libcudart.so.12} or {@code .13}): versions, devices and their attributes,
 * device and pinned host memory, streams, events, asynchronous copies, and kernels loaded from
 * CUBIN or PTX images ({@code cudaLibraryLoadData}, CUDA 12.8+/13) and launched with
 * {@code cudaLaunchKernel}. Every call is checked ({@link CudaException}).
 */
public final class Cudart {
    public static final int MEMCPY_HOST_TO_DEVICE = 1;
    public static final int MEMCPY_DEVICE_TO_HOST = 2;
    public static final int MEMCPY_DEVICE_TO_DEVICE = 3;
    public static final int STREAM_NON_BLOCKING = 1;
    public static final int EVENT_DEFAULT = 0;
    public static final int EVENT_DISABLE_TIMING = 2;
    /** {@code cudaErrorInsufficientDriver}: what a machine without a (new enough) driver answers. */
    public static final int ERROR_INSUFFICIENT_DRIVER = 35;
    /** {@code cudaErrorNoDevice}. */
    public static final int ERROR_NO_DEVICE = 100;

    /** {@code dim3}: three unsigned ints, passed by value to {@code cudaLaunchKernel}. */
    public static final StructLayout DIM3 = MemoryLayout.structLayout(
            JAVA_INT.withName("x"), JAVA_INT.withName("y"), JAVA_INT.withName("z"));

    private final NativeLibrary lib;
    private final MethodHandle runtimeGetVersion;
    private final MethodHandle driverGetVersion;
    private final MethodHandle getDeviceCount;
    private final MethodHandle setDevice;
    private final MethodHandle getDevice;
    private final MethodHandle deviceGetAttribute;
    private final MethodHandle deviceGetPciBusId;
    private final MethodHandle memGetInfo;
    private final MethodHandle deviceSynchronize;
    private final MethodHandle getErrorName;
    private final MethodHandle getErrorString;
    private final MethodHandle malloc;
    private final MethodHandle free;
    private final MethodHandle mallocHost;
    private final MethodHandle freeHost;
    private final MethodHandle memcpyAsync;
    private final MethodHandle memsetAsync;
    private final MethodHandle streamCreateWithFlags;
    private final MethodHandle streamDestroy;
    private final MethodHandle streamSynchronize;
    private final MethodHandle streamWaitEvent;
    private final MethodHandle eventCreateWithFlags;
    private final MethodHandle eventDestroy;
    private final MethodHandle eventRecord;
    private final MethodHandle eventSynchronize;
    private final MethodHandle eventElapsedTime;
    private final MethodHandle launchKernel;
    private final Optional<MethodHandle> libraryLoadData;
    private final Optional<MethodHandle> libraryUnload;
    private final Optional<MethodHandle> libraryGetKernel;

    public Cudart(NativeLibrary lib) {
        this.lib = lib;
        FunctionDescriptor intOfPtr = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        FunctionDescriptor intOfInt = FunctionDescriptor.of(JAVA_INT, JAVA_INT);
        runtimeGetVersion = lib.bind("cudaRuntimeGetVersion", intOfPtr);
        driverGetVersion = lib.bind("cudaDriverGetVersion", intOfPtr);
        getDeviceCount = lib.bind("cudaGetDeviceCount", intOfPtr);
        setDevice = lib.bind("cudaSetDevice", intOfInt);
        getDevice = lib.bind("cudaGetDevice", intOfPtr);
        deviceGetAttribute = lib.bind("cudaDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        deviceGetPciBusId = lib.bind("cudaDeviceGetPCIBusId", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        memGetInfo = lib.bind("cudaMemGetInfo", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        deviceSynchronize = lib.bind("cudaDeviceSynchronize", FunctionDescriptor.of(JAVA_INT));
        getErrorName = lib.bind("cudaGetErrorName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getErrorString = lib.bind("cudaGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        malloc = lib.bind("cudaMalloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        free = lib.bind("cudaFree", intOfPtr);
        mallocHost = lib.bind("cudaMallocHost", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        freeHost = lib.bind("cudaFreeHost", intOfPtr);
        memcpyAsync = lib.bind("cudaMemcpyAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS));
        memsetAsync = lib.bind("cudaMemsetAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS));
        streamCreateWithFlags = lib.bind("cudaStreamCreateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        streamDestroy = lib.bind("cudaStreamDestroy", intOfPtr);
        streamSynchronize = lib.bind("cudaStreamSynchronize", intOfPtr);
        streamWaitEvent = lib.bind("cudaStreamWaitEvent", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        eventCreateWithFlags = lib.bind("cudaEventCreateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        eventDestroy = lib.bind("cudaEventDestroy", intOfPtr);
        eventRecord = lib.bind("cudaEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        eventSynchronize = lib.bind("cudaEventSynchronize", intOfPtr);
        eventElapsedTime = lib.bind("cudaEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        launchKernel = lib.bind("cudaLaunchKernel",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, DIM3, DIM3, ADDRESS, JAVA_LONG, ADDRESS));
        libraryLoadData = lib.bindOptional("cudaLibraryLoadData", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        libraryUnload = lib.bindOptional("cudaLibraryUnload", intOfPtr);
        libraryGetKernel = lib.bindOptional("cudaLibraryGetKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    }

    public NativeLibrary library() {
        return lib;
    }

    // ---- status ------------------------------------------------------------------------------

    /** Turns a {@code cudaError_t} into an exception naming the call, the error's name and message. */
    public void check(String call, int status) {
        if (status != 0) {
            throw new CudaException(call, status, errorName(status), errorString(status));
        }
    }

    public String errorName(int status) {
        try {
            return cString((MemorySegment) getErrorName.invokeExact(status), "cudaError " + status);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public String errorString(int status) {
        try {
            return cString((MemorySegment) getErrorString.invokeExact(status), "");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- versions and devices ----------------------------------------------------------------

    /** {@code cudaRuntimeGetVersion}: 1000 * major + 10 * minor, e.g. 13010. */
    public int runtimeVersion() {
        return intOut("cudaRuntimeGetVersion", runtimeGetVersion);
    }

    /** {@code cudaDriverGetVersion}: the CUDA version the driver supports, 0 when there is no driver. */
    public int driverVersion() {
        return intOut("cudaDriverGetVersion", driverGetVersion);
    }

    /** {@code cudaGetDeviceCount}; without a usable driver this fails (cudaErrorInsufficientDriver, 35). */
    public int deviceCount() {
        return intOut("cudaGetDeviceCount", getDeviceCount);
    }

    /** Makes {@code device} current for the calling thread (the runtime's current device is per thread). */
    public void setDevice(int device) {
        try {
            check("cudaSetDevice", (int) setDevice.invokeExact(device));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int device() {
        return intOut("cudaGetDevice", getDevice);
    }

    public int attribute(DeviceAttribute attribute, int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check("cudaDeviceGetAttribute(" + attribute.name() + ")",
                    (int) deviceGetAttribute.invokeExact(out, attribute.code(), device));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code cudaDeviceGetPCIBusId}, e.g. {@code 0000:17:00.0}. */
    public String pciBusId(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(64);
            check("cudaDeviceGetPCIBusId", (int) deviceGetPciBusId.invokeExact(out, 64, device));
            return out.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code cudaMemGetInfo} of the current device: {free, total} bytes. */
    public long[] memoryInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG);
            MemorySegment total = a.allocate(JAVA_LONG);
            check("cudaMemGetInfo", (int) memGetInfo.invokeExact(free, total));
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void deviceSynchronize() {
        try {
            check("cudaDeviceSynchronize", (int) deviceSynchronize.invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- memory ------------------------------------------------------------------------------

    /** Device memory on the current device, freed with {@code cudaFree} on close. */
    public DeviceMemory malloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("cudaMalloc of " + bytes + " bytes");
        }
        MemorySegment p = pointerOut("cudaMalloc(" + bytes + " bytes)", malloc, bytes);
        return new DeviceMemory(this, p, bytes);
    }

    /** Page-locked host memory (for asynchronous copies), freed with {@code cudaFreeHost} on close. */
    public PinnedMemory mallocHost(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("cudaMallocHost of " + bytes + " bytes");
        }
        MemorySegment p = pointerOut("cudaMallocHost(" + bytes + " bytes)", mallocHost, bytes);
        return new PinnedMemory(this, p, bytes);
    }

    void free(MemorySegment p) {
        try {
            check("cudaFree", (int) free.invokeExact(p));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void freeHost(MemorySegment p) {
        try {
            check("cudaFreeHost", (int) freeHost.invokeExact(p));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code cudaMemcpyAsync} of {@code bytes} from {@code src} to {@code dst} ({@code kind}: MEMCPY_*) on {@code stream}. */
    public void memcpyAsync(MemorySegment dst, MemorySegment src, long bytes, int kind, Stream stream) {
        if (bytes == 0) {
            return;
        }
        try {
            check("cudaMemcpyAsync", (int) memcpyAsync.invokeExact(dst, src, bytes, kind, stream.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memsetAsync(MemorySegment dst, int value, long bytes, Stream stream) {
        try {
            check("cudaMemsetAsync", (int) memsetAsync.invokeExact(dst, value, bytes, stream.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- streams and events ------------------------------------------------------------------

    /** A non-blocking stream on the current device. */
    public Stream streamCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cudaStreamCreateWithFlags", (int) streamCreateWithFlags.invokeExact(out, STREAM_NON_BLOCKING));
            return new Stream(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamDestroy(MemorySegment s) {
        try {
            check("cudaStreamDestroy", (int) streamDestroy.invokeExact(s));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void synchronize(Stream s) {
        try {
            check("cudaStreamSynchronize", (int) streamSynchronize.invokeExact(s.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Makes {@code stream} wait for {@code event}. */
    public void waitEvent(Stream stream, Event event) {
        try {
            check("cudaStreamWaitEvent", (int) streamWaitEvent.invokeExact(stream.ptr(), event.ptr(), 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** An event; {@code timing} false makes it cheaper (no timestamps). */
    public Event eventCreate(boolean timing) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cudaEventCreateWithFlags",
                    (int) eventCreateWithFlags.invokeExact(out, timing ? EVENT_DEFAULT : EVENT_DISABLE_TIMING));
            return new Event(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventDestroy(MemorySegment e) {
        try {
            check("cudaEventDestroy", (int) eventDestroy.invokeExact(e));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void record(Event e, Stream s) {
        try {
            check("cudaEventRecord", (int) eventRecord.invokeExact(e.ptr(), s.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void synchronize(Event e) {
        try {
            check("cudaEventSynchronize", (int) eventSynchronize.invokeExact(e.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Milliseconds between two recorded (and completed) timing events. */
    public float elapsedMillis(Event start, Event end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_FLOAT);
            check("cudaEventElapsedTime", (int) eventElapsedTime.invokeExact(out, start.ptr(), end.ptr()));
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- kernels -----------------------------------------------------------------------------

    /** Whether this runtime loads code itself ({@code cudaLibraryLoadData}: CUDA 12.8+ and 13). */
    public boolean canLoadKernels() {
        return libraryLoadData.isPresent() && libraryGetKernel.isPresent() && libraryUnload.isPresent();
    }

    /**
     * Loads a CUBIN or NUL-terminated PTX image ({@code cudaLibraryLoadData}) into every device's
     * context; closed with {@code cudaLibraryUnload}.
     */
    public KernelLibrary loadLibrary(MemorySegment image) {
        MethodHandle load = libraryLoadData.orElseThrow(() -> new IllegalStateException(
                "cudaLibraryLoadData not found in " + lib.path() + ": kernels need a CUDA 12.8+ or 13 runtime"));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cudaLibraryLoadData", (int) load.invokeExact(out, image, MemorySegment.NULL, MemorySegment.NULL, 0,
                    MemorySegment.NULL, MemorySegment.NULL, 0));
            return new KernelLibrary(this, out.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void libraryUnload(MemorySegment l) {
        try {
            check("cudaLibraryUnload", (int) libraryUnload.orElseThrow().invokeExact(l));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The kernel {@code name} (an {@code extern "C"} name) of a loaded library. */
    public Kernel kernel(KernelLibrary library, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("cudaLibraryGetKernel(" + name + ")",
                    (int) libraryGetKernel.orElseThrow().invokeExact(out, library.ptr(), a.allocateFrom(name)));
            MemorySegment k = out.get(ADDRESS, 0);
            if (k.address() == 0) {
                throw new IllegalStateException("cudaLibraryGetKernel(" + name + ") returned success but NULL");
            }
            return new Kernel(library, name, k);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code cudaLaunchKernel(kernel, grid, block, args, sharedBytes, stream)}; {@code grid} and
     * {@code block} are {@link #DIM3} segments, {@code args} an array of pointers to each argument.
     */
    public void launch(Kernel kernel, MemorySegment grid, MemorySegment block, MemorySegment args, long sharedBytes,
                       Stream stream) {
        try {
            check("cudaLaunchKernel(" + kernel.name() + ")",
                    (int) launchKernel.invokeExact(kernel.ptr(), grid, block, args, sharedBytes, stream.ptr()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    private int intOut(String call, MethodHandle h) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check(call, (int) h.invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private MemorySegment pointerOut(String call, MethodHandle h, long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check(call, (int) h.invokeExact(out, bytes));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A C string returned by a library (static storage), or {@code fallback} for NULL. */
    static String cString(MemorySegment p, String fallback) {
        if (p == null || p.address() == 0) {
            return fallback;
        }
        return p.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /** Rethrows unchecked throwables as they are; wraps the checked ones that invokeExact declares. */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }

    /** Version 13010 as "13.1". */
    public static String versionString(int version) {
        return version / 1000 + "." + (version % 1000) / 10;
    }
}
