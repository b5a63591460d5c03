package io.moecluster.service;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;

/**
 * One log line per interval at most, for events a caller can cause at will (a malformed request,
 * say): the first is written, the next ones within the interval are counted, and the next line
 * written says how many were left out. Thread-safe; never writes a stack trace.
 */
public final class RateLimitedLog {
    private final Consumer<String> sink;
    private final long intervalNanos;
    private final LongSupplier clock;
    private final AtomicLong nextAllowed;
    private final AtomicLong suppressed = new AtomicLong();

    /** Warnings on {@code log}, at most one per {@code interval}. */
    public RateLimitedLog(Logger log, Duration interval) {
        this(log::warn, interval, System::nanoTime);
    }

    RateLimitedLog(Consumer<String> sink, Duration interval, LongSupplier clock) {
        this.sink = sink;
        this.intervalNanos = interval.toNanos();
        this.clock = clock;
        this.nextAllowed = new AtomicLong(clock.getAsLong());
    }

    /** Writes {@code line} unless a line was written less than the interval ago; then only counts it. */
    public void log(String line) {
        long now = clock.getAsLong();
        long next = nextAllowed.get();
        if (now - next < 0 || !nextAllowed.compareAndSet(next, now + intervalNanos)) {
            suppressed.incrementAndGet();
            return;
        }
        long skipped = suppressed.getAndSet(0);
        sink.accept(skipped == 0 ? line : line + " (" + skipped + " more like it not logged since the last line)");
    }
}
