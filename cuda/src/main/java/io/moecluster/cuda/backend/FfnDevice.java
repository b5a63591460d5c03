package io.moecluster.cuda.backend;

import java.lang.foreign.MemorySegment;

/**
 * The device steps {@link ExpertFfnProgram} is written in. Device memory is addressed by plain
 * {@code long}s; every step is issued in order on one stream and may run asynchronously until
 * {@link #synchronize()}. Implemented by the GPU ({@link CudaFfnDevice}) and, in the tests, by a host
 * emulation of the same arithmetic.
 */
public interface FfnDevice extends AutoCloseable {
    /** Makes this device current for the calling thread (a GPU's runtime keeps that per thread). */
    default void bind() {
    }

    /** Device memory that lives as long as this device, 256-byte aligned; only at start-up. */
    long allocate(long bytes);

    /** Host memory the device copies from and to asynchronously (pinned on a GPU); only at start-up. */
    MemorySegment allocateHost(long bytes);

    /** {@code bytes} from host {@code src} at {@code srcOffset} to device {@code dst}. */
    void copyToDevice(long dst, MemorySegment src, long srcOffset, long bytes);

    /** {@code bytes} from device {@code src} to host {@code dst} at {@code dstOffset}. */
    void copyToHost(MemorySegment dst, long dstOffset, long src, long bytes);

    /** {@code n} f32 values at {@code src} to BF16 at {@code dst} (round to nearest even). */
    void f32ToBf16(long src, long dst, long n);

    /** {@code n} F16 values at {@code src} to BF16 at {@code dst}. */
    void f16ToBf16(long src, long dst, long n);

    /**
     * The GEMMs of {@code gemm} (BF16 A and B, BF16 C, f32 accumulation), whose pointer arrays have
     * been copied to the device at {@code devicePointers} ({@link GroupedGemm#pointers()}'s layout).
     */
    void groupedGemm(GroupedGemm gemm, long devicePointers);

    /** {@code h [rows, ffn] = bf16(silu(gate) * up)} from {@code gu [rows, 2 ffn]} (gate, then up, per row). */
    void siluMul(long gu, long h, int rows, int ffn);

    /** {@code out [rows, cols] f32 = scales[r] * y[r, c]} from BF16 {@code y}; {@code scales} 0 means none. */
    void scaleRows(long y, long scales, long out, int rows, int cols);

    /** Waits until everything issued so far has finished. */
    void synchronize();

    /** One line: what and where, for logs. */
    String describe();

    @Override
    void close();
}
