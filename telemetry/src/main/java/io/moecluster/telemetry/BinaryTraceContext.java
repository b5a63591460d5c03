package io.moecluster.telemetry;

import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanId;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceId;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.context.Context;

/**
 * W3C trace context as the SBE data-plane header carries it: the 128-bit trace id as two longs
 * (high, low), the 64-bit span id as a long and the flags byte; all zero means none. Reading the
 * ids of a span context parses its hex strings without allocating.
 */
public final class BinaryTraceContext {
    private BinaryTraceContext() {
    }

    public static long traceIdHigh(SpanContext c) {
        return hexToLong(c.getTraceId(), 0);
    }

    public static long traceIdLow(SpanContext c) {
        return hexToLong(c.getTraceId(), 16);
    }

    public static long spanId(SpanContext c) {
        return hexToLong(c.getSpanId(), 0);
    }

    /** The W3C flags byte: 1 = sampled. */
    public static int flags(SpanContext c) {
        return c.getTraceFlags().asByte() & 0xff;
    }

    public static boolean isSampled(int flags) {
        return (flags & 0x01) != 0;
    }

    /** A remote parent from header fields; invalid (and so no parent) when they are zero. Allocates. */
    public static SpanContext remote(long traceIdHigh, long traceIdLow, long spanId, int flags) {
        if ((traceIdHigh == 0 && traceIdLow == 0) || spanId == 0) {
            return SpanContext.getInvalid();
        }
        return SpanContext.createFromRemoteParent(TraceId.fromLongs(traceIdHigh, traceIdLow), SpanId.fromLong(spanId),
                TraceFlags.fromByte((byte) flags), TraceState.getDefault());
    }

    /** A context whose parent is that remote span, for building children in this process. */
    public static Context remoteContext(long traceIdHigh, long traceIdLow, long spanId, int flags) {
        return Context.root().with(Span.wrap(remote(traceIdHigh, traceIdLow, spanId, flags)));
    }

    private static long hexToLong(CharSequence hex, int from) {
        long v = 0;
        for (int i = from; i < from + 16; i++) {
            char ch = hex.charAt(i);
            int d = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
            v = (v << 4) | d;
        }
        return v;
    }
}
