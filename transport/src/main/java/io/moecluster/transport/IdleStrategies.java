package io.moecluster.transport;

import io.aeron.driver.Configuration;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.SleepingIdleStrategy;
import org.agrona.concurrent.YieldingIdleStrategy;

/**
 * Idle strategies by name, for configuration. The default backs off to 1 ms sleeps because
 * busy-spinning threads from several services starve a 2-core machine.
 */
public final class IdleStrategies {
    public static final String DEFAULT = "backoff";
    /** Environment variable naming the data-plane idle strategy of every service (moe up passes it on). */
    public static final String ENV = "MOE_IDLE";
    /** What {@link #parse} accepts, for error messages and help texts. */
    public static final String NAMES = "backoff, backoff:<max park micros>, sleeping:<micros>, yielding, busy-spin, "
            + "or an Aeron idle strategy name (spin, yield, noop, sleep-ns, sleep-ms, or a class name such as "
            + "org.agrona.concurrent.BackoffIdleStrategy)";

    private IdleStrategies() {
    }

    /**
     * "backoff" (default; also for null or blank), "backoff:&lt;max park micros&gt;", "sleeping:&lt;micros&gt;",
     * "yielding", "busy-spin", or any name Aeron's media driver takes for its agents (its aliases
     * and idle strategy class names, with Aeron's {@code aeron.*} idle properties).
     *
     * @throws IllegalArgumentException naming the value when it is none of these
     */
    public static IdleStrategy parse(String spec) {
        if (spec == null || spec.isBlank()) {
            return backoff();
        }
        String s = spec.trim();
        if (s.equals("backoff")) {
            return backoff();
        }
        if (s.startsWith("backoff:")) {
            long us = micros(spec, s.substring("backoff:".length()));
            return new BackoffIdleStrategy(100, 10, TimeUnit.MICROSECONDS.toNanos(1), TimeUnit.MICROSECONDS.toNanos(us));
        }
        if (s.equals("yielding")) {
            return new YieldingIdleStrategy();
        }
        if (s.equals("busy-spin")) {
            return new BusySpinIdleStrategy();
        }
        if (s.startsWith("sleeping:")) {
            return new SleepingIdleStrategy(TimeUnit.MICROSECONDS.toNanos(micros(spec, s.substring("sleeping:".length()))));
        }
        try {
            return Configuration.agentIdleStrategy(s, null);
        } catch (Exception | LinkageError e) { // Aeron rethrows ClassNotFoundException unchecked
            throw new IllegalArgumentException("unknown idle strategy '" + spec + "': expected " + NAMES, e);
        }
    }

    private static long micros(String spec, String micros) {
        long us;
        try {
            us = Long.parseLong(micros);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("idle strategy '" + spec + "': needs whole microseconds, got '" + micros + "'");
        }
        if (us < 1 || us > 1_000_000) {
            throw new IllegalArgumentException("idle strategy '" + spec + "': time must be in [1, 1000000] microseconds, got " + us);
        }
        return us;
    }

    /** The data plane's strategy: {@value #ENV} when set (validated), else {@link #backoff()}. */
    public static IdleStrategy dataPlane() {
        return parse(System.getenv(ENV));
    }

    /** Spin a little, yield a little, then park from 1 µs growing to 1 ms: cheap when idle, quick when busy. */
    public static IdleStrategy backoff() {
        return new BackoffIdleStrategy(100, 10, TimeUnit.MICROSECONDS.toNanos(1), TimeUnit.MILLISECONDS.toNanos(1));
    }
}
