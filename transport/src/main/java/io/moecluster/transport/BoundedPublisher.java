package io.moecluster.transport;

import io.aeron.DirectBufferVector;
import io.aeron.Publication;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * Offers messages to a {@link Publication} with every result handled and every wait bounded:
 * back pressure, admin actions and a missing subscriber are retried until a deadline, a closed
 * publication or an exhausted position fail at once. Large messages are fragmented by Aeron.
 * Not thread-safe: one publishing thread per instance (the gather vectors are reused).
 */
public final class BoundedPublisher {
    public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(2);

    private final Publication publication;
    private final IdleStrategy retryIdle;
    private final long deadlineNs;
    private final DirectBufferVector[] pair = {new DirectBufferVector(), new DirectBufferVector()};
    private final AtomicLong backPressureEvents = new AtomicLong();
    private final AtomicLong notConnectedWaits = new AtomicLong();
    private final AtomicLong adminActionEvents = new AtomicLong();

    /** Default 2 s deadline; retries back off from spinning to 100 µs parks. */
    public BoundedPublisher(Publication publication) {
        this(publication, new BackoffIdleStrategy(10, 20, TimeUnit.MICROSECONDS.toNanos(1),
                TimeUnit.MICROSECONDS.toNanos(100)), DEFAULT_DEADLINE);
    }

    public BoundedPublisher(Publication publication, IdleStrategy retryIdle, Duration deadline) {
        if (deadline.isNegative() || deadline.isZero()) {
            throw new IllegalArgumentException("deadline must be positive, got " + deadline);
        }
        this.publication = publication;
        this.retryIdle = retryIdle;
        this.deadlineNs = deadline.toNanos();
    }

    /** Sends header and payload as one message, gathered by Aeron without a copy. */
    public void offer(DirectBuffer header, int hOff, int hLen, DirectBuffer payload, int pOff, int pLen) {
        Objects.requireNonNull(header, "header");
        Objects.requireNonNull(payload, "payload");
        checkLength((long) hLen + pLen);
        pair[0].reset(header, hOff, hLen);
        pair[1].reset(payload, pOff, pLen);
        try {
            send(null, 0, 0);
        } finally {
            // Do not keep the caller's buffers reachable after the send.
            pair[0].reset(null, 0, 0);
            pair[1].reset(null, 0, 0);
        }
    }

    /** Sends one contiguous message. */
    public void offer(DirectBuffer buffer, int offset, int length) {
        Objects.requireNonNull(buffer, "buffer");
        checkLength(length);
        send(buffer, offset, length);
    }

    private void send(DirectBuffer single, int offset, int length) {
        final long start = System.nanoTime();
        boolean sawBackPressure = false;
        boolean sawNotConnected = false;
        boolean sawAdmin = false;
        retryIdle.reset();
        while (true) {
            final long result = single != null ? publication.offer(single, offset, length) : publication.offer(pair);
            if (result >= 0) {
                return;
            }
            if (result == Publication.CLOSED || result == Publication.MAX_POSITION_EXCEEDED) {
                throw failure(result, System.nanoTime() - start);
            }
            if (result == Publication.BACK_PRESSURED && !sawBackPressure) {
                sawBackPressure = true;
                backPressureEvents.incrementAndGet();
            } else if (result == Publication.NOT_CONNECTED && !sawNotConnected) {
                sawNotConnected = true;
                notConnectedWaits.incrementAndGet();
            } else if (result == Publication.ADMIN_ACTION && !sawAdmin) {
                sawAdmin = true;
                adminActionEvents.incrementAndGet();
            }
            final long waited = System.nanoTime() - start;
            if (waited >= deadlineNs) {
                throw failure(result, waited);
            }
            // Admin actions (term rotation) clear on the next try; no need to idle.
            if (result != Publication.ADMIN_ACTION) {
                retryIdle.idle();
            }
        }
    }

    private void checkLength(long length) {
        int max = publication.maxMessageLength();
        if (length > max) {
            throw new TransportException("message of " + length + " bytes exceeds the max message length of "
                    + max + " bytes on " + publication.channel() + " stream " + publication.streamId()
                    + " (min(term length / 8, 16 MiB); raise the term length or send smaller batches)");
        }
    }

    private TransportException failure(long result, long waitedNs) {
        return new TransportException("offer on " + publication.channel() + " stream " + publication.streamId()
                + " failed: " + Publication.errorString(result) + " after waiting " + TimeUnit.NANOSECONDS.toMillis(waitedNs)
                + " ms (deadline " + TimeUnit.NANOSECONDS.toMillis(deadlineNs) + " ms)");
    }

    public Publication publication() {
        return publication;
    }

    public int maxMessageLength() {
        return publication.maxMessageLength();
    }

    /** Offers that met back pressure at least once. */
    public long backPressureEvents() {
        return backPressureEvents.get();
    }

    /** Offers that found no subscriber at least once and waited for one. */
    public long notConnectedWaits() {
        return notConnectedWaits.get();
    }

    /** Offers that met an admin action (e.g. term rotation) at least once. */
    public long adminActionEvents() {
        return adminActionEvents.get();
    }
}
