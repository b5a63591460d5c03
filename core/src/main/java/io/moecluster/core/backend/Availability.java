package io.moecluster.core.backend;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * Whether a compute backend can run on this machine, and if not, why: a missing library, no
 * device, a driver too old. A provider answers this as a value, before anything is opened, so an
 * operator sees every reason at start-up (and in {@code moe backends}) rather than an exception
 * from deep inside the first call.
 *
 * @param reasons empty when available
 */
public record Availability(boolean available, List<String> reasons) {
    public Availability {
        reasons = List.copyOf(reasons);
        if (available != reasons.isEmpty()) {
            throw new IllegalArgumentException("an available backend has no reasons against it, an unavailable one at least one");
        }
    }

    public static Availability yes() {
        return new Availability(true, List.of());
    }

    public static Availability no(String reason, String... more) {
        Objects.requireNonNull(reason, "reason");
        return new Availability(false, Stream.concat(Stream.of(reason), Arrays.stream(more)).toList());
    }

    /** "available", or the reasons joined by "; ". */
    public String describe() {
        return available ? "available" : String.join("; ", reasons);
    }
}
