package io.moecluster.core.parallel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class WorkerPoolTest {
    @Test
    void coversEveryIndexExactlyOnceAcrossManyLoops() {
        try (WorkerPool pool = new WorkerPool(3, "t")) {
            for (int n : new int[] {1, 2, 15, 16, 17, 1000, 4097}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                pool.parallelFor(n, 1, (worker, start, end) -> {
                    assertThat(worker).isBetween(0, 2);
                    for (int i = start; i < end; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertThat(hits.get(i)).as("index %d of %d", i, n).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void failureInAWorkerReachesTheCallerAndThePoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2, "t")) {
            assertThatThrownBy(() -> pool.parallelFor(1000, 1, (w, s, e) -> {
                if (s <= 500 && 500 < e) {
                    throw new IllegalStateException("boom at 500");
                }
            })).isInstanceOf(IllegalStateException.class).hasMessage("boom at 500");
            AtomicIntegerArray hits = new AtomicIntegerArray(100);
            pool.parallelFor(100, 1, (w, s, e) -> {
                for (int i = s; i < e; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 100; i++) {
                assertThat(hits.get(i)).isEqualTo(1);
            }
        }
    }

    /**
     * More threads than cores and thousands of tiny loops, so that workers wake late: a chunk is
     * never run after its loop returned (a late worker must not pick up a finished loop's task),
     * and every index of every loop runs exactly once.
     */
    @Test
    void lateWorkersNeverRunAFinishedLoop() {
        int threads = Runtime.getRuntime().availableProcessors() + 2;
        AtomicInteger current = new AtomicInteger(-1);
        AtomicInteger stale = new AtomicInteger();
        try (WorkerPool pool = new WorkerPool(threads, "late")) {
            for (int loop = 0; loop < 100_000; loop++) {
                int n = 2 + loop % 7;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                int id = loop;
                current.set(id);
                pool.parallelFor(n, 1, (w, s, e) -> {
                    if (current.get() != id) {
                        stale.incrementAndGet();
                    }
                    for (int i = s; i < e; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                current.set(-1);
                for (int i = 0; i < n; i++) {
                    if (hits.get(i) != 1) {
                        assertThat(hits.get(i)).as("index %d of loop %d", i, loop).isEqualTo(1);
                    }
                }
            }
        }
        assertThat(stale.get()).as("chunks run after their loop returned").isZero();
    }
}
