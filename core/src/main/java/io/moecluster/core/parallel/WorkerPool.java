package io.moecluster.core.parallel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of threads that split index ranges of one task at a time, for the forward pass.
 *
 * <p>Why not a ForkJoinPool: a decode step issues hundreds of short parallel loops (one per
 * matmul), and the loop must neither allocate nor pay a full park/unpark per loop. Workers spin
 * briefly after each loop (the next one usually follows within microseconds) and then park, so an
 * idle engine burns no CPU. Chunks are claimed dynamically; results stay reproducible because
 * every output element is computed by exactly one thread in a fixed order, whatever the split.
 *
 * <p>The caller waits for the loop's chunks, not for the workers: a chunk is claimed by a CAS on
 * one word holding the loop's generation, its chunk count and its next chunk, so a worker that wakes late (its
 * core busy with another process, as when the services of a cluster share two cores) finds the
 * loop taken or gone and goes back to waiting without touching it. Waiting for every worker to
 * check in instead made each of the hundreds of loops per step wait out a descheduled worker's
 * time slice whenever the cores were shared.
 *
 * <p>One caller at a time: {@link #parallelFor} is not reentrant and must not be called
 * concurrently (each engine owns its pool).
 */
public final class WorkerPool implements AutoCloseable {
    /** How long an idle worker spins for the next loop before parking. */
    private static final long SPIN_NANOS = 50_000;
    /** Spins of a caller waiting for others' chunks before it starts yielding its core. */
    private static final int SPINS_BEFORE_YIELD = 1_000;
    /** The most chunks a loop has: the count's 16 bits in {@link #claim}. */
    private static final int MAX_CHUNKS = 0xFFFF;

    private final Thread[] workers;
    /**
     * The current loop's generation (bits 32-63), its number of chunks (bits 16-31) and its next
     * unclaimed chunk (bits 0-15). The count is in the word, not read from a field, because a
     * worker that reads the fields just after a loop ended may see the next loop's: a larger count
     * from there would let it claim a chunk past the end of a loop whose chunks are all taken.
     */
    private final AtomicLong claim = new AtomicLong();
    /** Chunks of the current loop finished, by anyone. */
    private final AtomicInteger finished = new AtomicInteger();
    /** The current loop's generation, which idle workers watch. */
    private volatile int generation;
    private volatile boolean closed;
    private volatile Throwable failure;

    // The current loop; written before the generation is published in claim, read after it.
    private RangeTask task;
    private int count;
    private int chunkSize;

    /** @param threads total threads including the caller; 1 runs everything on the caller. */
    public WorkerPool(int threads, String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int worker = i + 1;
            Thread t = new Thread(() -> workerLoop(worker), name + "-" + worker);
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    /** One thread per available processor. */
    public static WorkerPool ofAvailableProcessors(String name) {
        return new WorkerPool(Runtime.getRuntime().availableProcessors(), name);
    }

    public int threads() {
        return workers.length + 1;
    }

    /**
     * Runs {@code task} over {@code [0, n)} and returns when every index is done. Ranges are at
     * least {@code grain} long so that tiny loops stay on the caller.
     */
    public void parallelFor(int n, int grain, RangeTask task) {
        if (n <= 0) {
            return;
        }
        if (workers.length == 0 || n <= grain) {
            task.run(0, 0, n);
            return;
        }
        int threads = workers.length + 1;
        // Several chunks per thread balance uneven progress; never smaller than grain.
        int size = Math.max(grain, (n + threads * 4 - 1) / (threads * 4));
        size = Math.max(size, (int) (((long) n + MAX_CHUNKS - 1) / MAX_CHUNKS)); // a count that fits its 16 bits
        int total = (n + size - 1) / size;
        this.task = task;
        this.count = n;
        this.chunkSize = size;
        finished.set(0);
        int g = generation + 1;
        claim.set(((long) g << 32) | ((long) total << 16)); // next chunk 0; the volatile write publishes the fields above
        generation = g;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        work(0, g);
        for (int spins = 0; finished.get() < total; spins++) {
            if (spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // the chunk left is on a thread that may need this core
            }
        }
        this.task = null;
        Throwable f = failure;
        failure = null;
        if (f != null) {
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException(f);
        }
    }

    /**
     * Claims and runs chunks of loop {@code g} until none is left. The loop's fields are read
     * after its generation is seen in {@link #claim} and used only once a claim of one of its
     * chunks succeeds: while a chunk of it is unclaimed the loop cannot have ended, so they are
     * still its own. A failing chunk still counts as finished, the first failure reaches the
     * caller, and the chunks nobody has claimed yet are not run.
     */
    private void work(int worker, int g) {
        long s = claim.get();
        if (generationOf(s) != g) {
            return;
        }
        RangeTask t = task;
        int n = count;
        int size = chunkSize;
        while (generationOf(s) == g && nextChunkOf(s) < chunkCountOf(s)) {
            if (claim.compareAndSet(s, s + 1)) {
                int start = nextChunkOf(s) * size;
                try {
                    t.run(worker, start, Math.min(n, start + size));
                } catch (Throwable e) {
                    if (failure == null) {
                        failure = e;
                    }
                    skipRest(g);
                } finally {
                    finished.incrementAndGet();
                }
            }
            s = claim.get();
        }
    }

    /** Marks loop {@code g}'s unclaimed chunks as claimed and finished, without running them. */
    private void skipRest(int g) {
        for (long s = claim.get(); generationOf(s) == g && nextChunkOf(s) < chunkCountOf(s); s = claim.get()) {
            int left = chunkCountOf(s) - nextChunkOf(s);
            if (claim.compareAndSet(s, s + left)) {
                finished.addAndGet(left);
                return;
            }
        }
    }

    private static int generationOf(long claimWord) {
        return (int) (claimWord >>> 32);
    }

    private static int chunkCountOf(long claimWord) {
        return (int) ((claimWord >>> 16) & 0xFFFF);
    }

    private static int nextChunkOf(long claimWord) {
        return (int) (claimWord & 0xFFFF);
    }

    private void workerLoop(int worker) {
        int seen = 0;
        while (true) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            int g;
            while ((g = generation) == seen && !closed) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = g;
            work(worker, g);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        for (Thread w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
