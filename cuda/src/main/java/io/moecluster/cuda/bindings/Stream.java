package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** A {@code cudaStream_t} made by {@code cudaStreamCreateWithFlags}; {@code cudaStreamDestroy} on close. */
public final class Stream extends NativeHandle {
    private final Cudart cudart;

    Stream(Cudart cudart, MemorySegment ptr) {
        super("cudaStream_t", ptr);
        this.cudart = cudart;
    }

    @Override
    protected void destroy(MemorySegment p) {
        cudart.streamDestroy(p);
    }
}
