package io.moecluster.transport;

import io.aeron.Aeron;
import io.aeron.exceptions.AeronException;
import io.aeron.exceptions.ClientTimeoutException;
import io.aeron.exceptions.ConductorServiceTimeoutException;
import io.aeron.exceptions.DriverTimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Aeron clients of a media driver another process (or an {@link EmbeddedMediaDriver}) runs.
 *
 * <p>An Aeron client can die under a live process: a stall (SIGSTOP, a long GC pause, a frozen VM)
 * longer than the driver's client liveness timeout makes the driver drop the client and the
 * client close itself ({@code ConductorServiceTimeoutException}, or {@code ClientTimeoutException}
 * when the driver says so first); a media driver that dies makes it close after the driver timeout
 * ({@code DriverTimeoutException}). Its publications and subscriptions are then closed for good.
 * {@link #connect(String, Consumer)} reports that once, so the service can stop saying it serves
 * and exit for its supervisor to restart it. Aeron's own default handler would instead exit the
 * JVM at once on a driver timeout (status -1, calls in flight cut off), and print other errors with
 * their stack traces; here they are logged as one line each (at most every 10 s per kind).
 */
public final class AeronClients {
    private static final Logger LOG = LoggerFactory.getLogger(AeronClients.class);
    /**
     * How long a client waits for the driver at connect, and how long a driver may be silent
     * before the client gives up on it (the driver writes its heartbeat every second or so).
     */
    public static final long DRIVER_TIMEOUT_MS = 10_000;

    private AeronClients() {
    }

    /**
     * Connects to the driver in {@code aeronDir}; fails within the driver timeout, naming the
     * directory, when no driver runs there. A client that dies later is only logged.
     */
    public static Aeron connect(String aeronDir) {
        return connect(aeronDir, cause -> { });
    }

    /**
     * As {@link #connect(String)}; {@code onLost} is called once, with the cause (on the client's
     * conductor thread; it must not block), when the client is closing for good by itself: the
     * driver or the client's own conductor timed it out, or the driver is gone. Not for an
     * ordinary {@code close()}.
     */
    public static Aeron connect(String aeronDir, Consumer<Throwable> onLost) {
        AtomicBoolean reported = new AtomicBoolean();
        Consumer<Throwable> report = cause -> {
            if (reported.compareAndSet(false, true)) {
                onLost.accept(cause);
            }
        };
        AtomicLong lastLogged = new AtomicLong(System.nanoTime() - 20_000_000_000L);
        try {
            return Aeron.connect(new Aeron.Context().aeronDirectoryName(aeronDir).driverTimeoutMs(DRIVER_TIMEOUT_MS)
                    .errorHandler(t -> {
                        if (isFatal(t)) {
                            LOG.error("Aeron client of {} lost: {}", aeronDir, t.toString());
                            report.accept(t);
                            return;
                        }
                        long now = System.nanoTime();
                        long last = lastLogged.get();
                        if (now - last > 10_000_000_000L && lastLogged.compareAndSet(last, now)) {
                            LOG.warn("Aeron client of {}: {}", aeronDir, t.toString());
                        }
                    }));
        } catch (RuntimeException e) {
            throw new TransportException("no Aeron media driver reachable in " + aeronDir + ": " + e.getMessage(), e);
        }
    }

    /** Errors after which the client is closed for good. */
    static boolean isFatal(Throwable t) {
        return t instanceof DriverTimeoutException || t instanceof ConductorServiceTimeoutException
                || t instanceof ClientTimeoutException
                || (t instanceof AeronException a && a.category() == AeronException.Category.FATAL);
    }
}
