package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** {@code cudaMallocHost}'d page-locked host memory; {@code cudaFreeHost} on close. */
public final class PinnedMemory extends NativeHandle {
    private final Cudart cudart;
    private final long bytes;

    PinnedMemory(Cudart cudart, MemorySegment ptr, long bytes) {
        super("pinned host memory", ptr);
        this.cudart = cudart;
        this.bytes = bytes;
    }

    public long bytes() {
        return bytes;
    }

    /** The memory as a host segment of {@link #bytes()} bytes (invalid once closed). */
    public MemorySegment segment() {
        return ptr().reinterpret(bytes);
    }

    @Override
    protected void destroy(MemorySegment p) {
        cudart.freeHost(p);
    }
}
