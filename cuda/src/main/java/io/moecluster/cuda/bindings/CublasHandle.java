package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** A {@code cublasHandle_t}; {@code cublasDestroy} on close. */
public final class CublasHandle extends NativeHandle {
    private final Cublas cublas;

    CublasHandle(Cublas cublas, MemorySegment ptr) {
        super("cublasHandle_t", ptr);
        this.cublas = cublas;
    }

    @Override
    protected void destroy(MemorySegment p) {
        cublas.destroy(p);
    }
}
