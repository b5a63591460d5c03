package io.moecluster.core.parallel;

/**
 * A body for {@link WorkerPool#parallelFor}: processes indices {@code [start, end)} on the thread
 * numbered {@code worker} (0 is the calling thread), which lets a task keep per-thread scratch.
 *
 * <p>Kernels implement this on long-lived objects whose fields are set before each call, so a
 * forward pass dispatches work without allocating a lambda per call.
 */
@FunctionalInterface
public interface RangeTask {
    void run(int worker, int start, int end);
}
