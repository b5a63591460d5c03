package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** A {@code cudaKernel_t} of a loaded {@link KernelLibrary}; valid while the library is open. */
public final class Kernel {
    private final KernelLibrary library;
    private final String name;
    private final MemorySegment ptr;

    Kernel(KernelLibrary library, String name, MemorySegment ptr) {
        this.library = library;
        this.name = name;
        this.ptr = ptr;
    }

    public String name() {
        return name;
    }

    /** The handle to launch; throws once its library is closed. */
    public MemorySegment ptr() {
        if (!library.isOpen()) {
            throw new IllegalStateException("kernel " + name + ": its library is closed");
        }
        return ptr;
    }
}
