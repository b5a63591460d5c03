package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** A {@code cudaEvent_t}; {@code cudaEventDestroy} on close. */
public final class Event extends NativeHandle {
    private final Cudart cudart;

    Event(Cudart cudart, MemorySegment ptr) {
        super("cudaEvent_t", ptr);
        this.cudart = cudart;
    }

    @Override
    protected void destroy(MemorySegment p) {
        cudart.eventDestroy(p);
    }
}
