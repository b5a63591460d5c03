package io.moecluster.core.parallel;

import java.util.concurrent.atomic.AtomicInteger;
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
 * <p>One caller at a time: {@link #parallelFor} is not reentrant and must not be called
 * concurrently (each engine owns its pool).
 */
public final class WorkerPool implements AutoCloseable {
    /** How long an idle worker spins for the next loop before parking. */
    private static final long SPIN_NANOS = 50_000;

    private final Thread[] workers;
    private final AtomicInteger nextChunk = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    private volatile Throwable failure;

    private RangeTask task;
    private int count;
    private int chunkSize;
    private int chunks;

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
        this.task = task;
        this.count = n;
        this.chunkSize = size;
        this.chunks = (n + size - 1) / size;
        nextChunk.set(0);
        running.set(workers.length);
        generation++; // volatile write publishes the fields above
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        Throwable callerFailure = null;
        try {
            work(0);
        } catch (Throwable t) {
            callerFailure = t;
        }
        while (running.get() > 0) {
            Thread.onSpinWait();
        }
        this.task = null;
        Throwable f = callerFailure != null ? callerFailure : failure;
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

    private void work(int worker) {
        RangeTask t = task;
        int n = count;
        int size = chunkSize;
        int total = chunks;
        for (int c = nextChunk.getAndIncrement(); c < total; c = nextChunk.getAndIncrement()) {
            int start = c * size;
            t.run(worker, start, Math.min(n, start + size));
        }
    }

    private void workerLoop(int worker) {
        long seen = 0;
        while (true) {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (generation == seen && !closed) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = generation;
            try {
                work(worker);
            } catch (Throwable t) {
                failure = t;
                nextChunk.set(Integer.MAX_VALUE / 2); // stop handing out chunks
            } finally {
                running.decrementAndGet();
            }
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
