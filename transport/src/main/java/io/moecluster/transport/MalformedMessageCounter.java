package io.moecluster.transport;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Counts dropped messages per kind. The first of each kind is logged at WARN with its details;
 * later ones are only counted, so a flood of bad input cannot flood the log.
 * Kinds are a small fixed set of strings, so the map stays bounded.
 */
public final class MalformedMessageCounter {
    private static final Logger LOG = LoggerFactory.getLogger(MalformedMessageCounter.class);

    private final String source;
    private final ConcurrentHashMap<String, LongAdder> counts = new ConcurrentHashMap<>();

    /** @param source what receives the messages (e.g. channel and stream), for the log line */
    public MalformedMessageCounter(String source) {
        this.source = source;
    }

    public void record(MalformedMessageException e) {
        record(e.kind(), e.getMessage(), null);
    }

    /** Counts one dropped message; logs it when it is the first of its kind. */
    public void record(String kind, String detail, Throwable cause) {
        LongAdder adder = counts.get(kind);
        if (adder == null) {
            LongAdder fresh = new LongAdder();
            adder = counts.putIfAbsent(kind, fresh);
            if (adder == null) {
                adder = fresh;
                if (cause != null) {
                    LOG.warn("{}: dropped a message ({}): {}; later ones of this kind are only counted", source, kind, detail, cause);
                } else {
                    LOG.warn("{}: dropped a malformed message ({}): {}; later ones of this kind are only counted", source, kind, detail);
                }
            }
        }
        adder.increment();
    }

    public long count(String kind) {
        LongAdder adder = counts.get(kind);
        return adder == null ? 0 : adder.sum();
    }

    public long total() {
        long sum = 0;
        for (LongAdder adder : counts.values()) {
            sum += adder.sum();
        }
        return sum;
    }

    /** A sorted snapshot, for metrics and logs. */
    public Map<String, Long> snapshot() {
        Map<String, Long> out = new TreeMap<>();
        counts.forEach((k, v) -> out.put(k, v.sum()));
        return out;
    }
}
