package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** A {@code cudaLibrary_t}: CUBIN or PTX loaded by {@code cudaLibraryLoadData}; {@code cudaLibraryUnload} on close. */
public final class KernelLibrary extends NativeHandle {
    private final Cudart cudart;

    KernelLibrary(Cudart cudart, MemorySegment ptr) {
        super("cudaLibrary_t", ptr);
        this.cudart = cudart;
    }

    @Override
    protected void destroy(MemorySegment p) {
        cudart.libraryUnload(p);
    }
}
