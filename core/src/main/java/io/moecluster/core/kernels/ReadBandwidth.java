package io.moecluster.core.kernels;

import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * The memory roofline for decode: how fast this machine streams a buffer much larger than its
 * caches through the same pool and Vector API loads the kernels use. Decode at batch 1 reads every
 * active weight once per token, so bandwidth / active bytes is the tokens/s it cannot beat. It
 * measures the machine, not a kernel: under {@code moe.vectorBits=0} it still streams with the
 * CPU's preferred vectors ({@link Kernels#F}).
 */
public final class ReadBandwidth implements RangeTask {
    private static final int BLOCK = 1 << 16; // floats per work item (256 KiB)

    private final MemorySegment buffer;
    private final float[] partial;

    private ReadBandwidth(MemorySegment buffer, int threads) {
        this.buffer = buffer;
        this.partial = new float[threads * 16]; // spaced so workers do not share a cache line
    }

    /** Best of {@code passes} full reads of a {@code bytes}-sized buffer, in bytes per second. */
    public static double measure(WorkerPool pool, long bytes, int passes) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(bytes, 64);
            buf.fill((byte) 1); // touch every page so the first pass measures reads, not page faults
            ReadBandwidth task = new ReadBandwidth(buf, pool.threads());
            int blocks = (int) (bytes / 4 / BLOCK);
            double best = 0;
            for (int p = 0; p < passes; p++) {
                long start = System.nanoTime();
                pool.parallelFor(blocks, 1, task);
                long nanos = System.nanoTime() - start;
                best = Math.max(best, (double) blocks * BLOCK * 4 / (nanos / 1e9));
            }
            return best; // the sums were stored to task.partial, a shared array, so the reads were not elided
        }
    }

    @Override
    public void run(int worker, int start, int end) {
        FloatVector a0 = FloatVector.zero(Kernels.F);
        FloatVector a1 = FloatVector.zero(Kernels.F);
        int lanes = Kernels.LANES;
        for (int b = start; b < end; b++) {
            long base = (long) b * BLOCK;
            for (int i = 0; i < BLOCK; i += 2 * lanes) {
                a0 = a0.add(Kernels.loadF32(buffer, base + i));
                a1 = a1.add(Kernels.loadF32(buffer, base + i + lanes));
            }
        }
        partial[worker * 16] += Kernels.sumLanes(a0.add(a1));
    }
}
