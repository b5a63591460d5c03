package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/**
 * An object a library created, paired with the call that destroys it. Never NULL: a create call
 * that reports success but yields NULL fails at once. {@link #ptr()} after {@link #close()} throws
 * instead of handing a dangling or NULL pointer to a library that would not check it. Closing twice
 * is a no-op. Not thread-safe, as the objects themselves are not.
 */
public abstract class NativeHandle implements AutoCloseable {
    private final String kind;
    private MemorySegment ptr;

    protected NativeHandle(String kind, MemorySegment ptr) {
        this.kind = kind;
        if (ptr == null || ptr.address() == 0) {
            throw new IllegalStateException(kind + ": the library returned success but a NULL handle");
        }
        this.ptr = ptr;
    }

    /** The pointer to pass to the library; throws once closed. */
    public final MemorySegment ptr() {
        MemorySegment p = ptr;
        if (p == null) {
            throw new IllegalStateException(kind + " is closed");
        }
        return p;
    }

    public final boolean isOpen() {
        return ptr != null;
    }

    /** What this handle is, e.g. "cudaStream_t". */
    public final String kind() {
        return kind;
    }

    @Override
    public final void close() {
        MemorySegment p = ptr;
        if (p != null) {
            ptr = null;
            destroy(p);
        }
    }

    /** Calls the library's destroy function (checked) on {@code p}. */
    protected abstract void destroy(MemorySegment p);

    @Override
    public String toString() {
        return kind + (ptr == null ? " (closed)" : "@0x" + Long.toHexString(ptr.address()));
    }
}
