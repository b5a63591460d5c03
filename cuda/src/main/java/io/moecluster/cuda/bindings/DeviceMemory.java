package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** {@code cudaMalloc}'d device memory; {@code cudaFree} on close. Never dereferenced on the host. */
public final class DeviceMemory extends NativeHandle {
    private final Cudart cudart;
    private final long bytes;

    DeviceMemory(Cudart cudart, MemorySegment ptr, long bytes) {
        super("device memory", ptr);
        this.cudart = cudart;
        this.bytes = bytes;
    }

    public long bytes() {
        return bytes;
    }

    /** The device address. */
    public long address() {
        return ptr().address();
    }

    /** A pointer {@code offset} bytes in, checked against the allocation. */
    public MemorySegment at(long offset) {
        if (offset < 0 || offset > bytes) {
            throw new IndexOutOfBoundsException("offset " + offset + " outside " + bytes + " bytes of device memory");
        }
        return MemorySegment.ofAddress(address() + offset);
    }

    @Override
    protected void destroy(MemorySegment p) {
        cudart.free(p);
    }
}
