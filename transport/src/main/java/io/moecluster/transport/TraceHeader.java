package io.moecluster.transport;

/**
 * The W3C trace context a sender puts on the TokenBatches it sends next (trace id as two longs,
 * span id, flags; all zero = none). Filled by the tracing side, read by the sender before each
 * send; owned by one thread.
 */
public final class TraceHeader {
    private long traceIdHigh;
    private long traceIdLow;
    private long spanId;
    private int flags;

    public void set(long traceIdHigh, long traceIdLow, long spanId, int flags) {
        this.traceIdHigh = traceIdHigh;
        this.traceIdLow = traceIdLow;
        this.spanId = spanId;
        this.flags = flags;
    }

    public void clear() {
        set(0, 0, 0, 0);
    }

    /** Puts this context on {@code writer}'s next send and returns the writer. */
    public TokenBatchWriter applyTo(TokenBatchWriter writer) {
        return writer.trace(traceIdHigh, traceIdLow, spanId, flags);
    }

    public long traceIdHigh() {
        return traceIdHigh;
    }

    public long traceIdLow() {
        return traceIdLow;
    }

    public long spanId() {
        return spanId;
    }

    public int flags() {
        return flags;
    }
}
