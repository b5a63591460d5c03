package io.moecluster.router;

import java.util.List;

/**
 * Finds stop sequences in generated text and says how much of it is safe to stream: text that
 * could still turn out to be the start of a stop sequence is held back, since a stop sequence must
 * never reach the client.
 */
public final class StopSequenceMatcher {
    private final List<String> stops;
    private final int longest;

    public StopSequenceMatcher(List<String> stops) {
        this.stops = List.copyOf(stops);
        this.longest = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /** Index of the earliest stop sequence in {@code text} at or after {@code from}, or -1. */
    public int firstMatch(CharSequence text, int from) {
        if (stops.isEmpty()) {
            return -1;
        }
        String s = text.toString();
        int best = -1;
        int start = Math.max(0, from - longest);
        for (String stop : stops) {
            int i = s.indexOf(stop, start);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }

    /** How many leading chars of {@code text} can be emitted: all but a suffix that begins some stop sequence. */
    public int safeLength(CharSequence text) {
        int n = text.length();
        for (int k = Math.min(longest - 1, n); k > 0; k--) {
            CharSequence suffix = text.subSequence(n - k, n);
            for (String stop : stops) {
                if (stop.length() > k && stop.startsWith(suffix.toString())) {
                    return n - k;
                }
            }
        }
        return n;
    }
}
