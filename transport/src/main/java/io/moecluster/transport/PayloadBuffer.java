package io.moecluster.transport;

import org.agrona.concurrent.UnsafeBuffer;

/**
 * A reusable heap payload buffer that grows (to powers of two) up to a fixed cap and never shrinks,
 * so a steady stream of batches allocates nothing. Heap-backed so F32 rows copy in bulk.
 */
final class PayloadBuffer {
    private final int maxBytes;
    private final UnsafeBuffer buffer = new UnsafeBuffer(new byte[0]);

    PayloadBuffer(int maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The buffer, with capacity at least bytes. */
    UnsafeBuffer ensure(int bytes, String what) {
        if (bytes > maxBytes) {
            throw new TransportException(what + ": payload of " + bytes + " bytes exceeds the " + maxBytes
                    + " bytes a message can carry here");
        }
        if (buffer.capacity() < bytes) {
            int size = (int) Math.min(maxBytes, Math.max(1024, Long.highestOneBit(bytes - 1L) << 1));
            buffer.wrap(new byte[Math.max(size, bytes)]);
        }
        return buffer;
    }
}
