package io.moecluster.core.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-thread scratch memory of the row kernels: allocated on a thread's first call, grown when a
 * call needs more, otherwise reused, so no allocation per token. A kernel takes what it needs at
 * the start of {@link WeightMatrix#applyRows} and is done with it when that returns (the calls
 * are serial on a thread).
 *
 * <ul>
 *   <li>{@link #decodedRows}: f32 room for weight rows a kernel decodes once (BF16 widened, int8
 *       scaled) and then applies to every token of a batch from cache.
 *   <li>{@link #sums}: eight f32 vectors where a kernel with many accumulators leaves its
 *       per-output sums for a second method to reduce (C2 compiles a method within a node
 *       budget; past it, it stops inlining and boxes the vectors it passes to calls).
 * </ul>
 */
final class KernelScratch {
    private static final ThreadLocal<KernelScratch> PER_THREAD = ThreadLocal.withInitial(KernelScratch::new);

    private MemorySegment decoded = MemorySegment.NULL;
    private final MemorySegment sums = Arena.ofAuto().allocate(8L * Kernels.LANES * 4, 64);

    private KernelScratch() {
    }

    /** This thread's scratch. */
    static KernelScratch ofThisThread() {
        return PER_THREAD.get();
    }

    /** Eight f32 vectors. */
    MemorySegment sums() {
        return sums;
    }

    /** At least {@code floats} f32 values. */
    MemorySegment decodedRows(long floats) {
        if (decoded.byteSize() < floats * 4) {
            decoded = grow(floats);
        }
        return decoded;
    }

    private static MemorySegment grow(long floats) {
        return Arena.ofAuto().allocate(Math.max(floats * 4, 16 * 1024), 64);
    }
}
