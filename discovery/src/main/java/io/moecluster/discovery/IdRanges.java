package io.moecluster.discovery;

import java.util.BitSet;

/** Parses id lists such as {@code 0-3}, {@code 0,2,5} or {@code 0-3,8} (flags {@code --experts}, {@code --layers}). */
public final class IdRanges {
    private IdRanges() {
    }

    /**
     * @param what the flag or field, for error messages
     * @param limit ids must be below this
     */
    public static BitSet parse(String text, String what, int limit) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException(what + ": empty (expected e.g. 0-3 or 0,2,5)");
        }
        BitSet ids = new BitSet();
        for (String part : text.split(",")) {
            String p = part.strip();
            int dash = p.indexOf('-', 1);
            int from;
            int to;
            try {
                from = Integer.parseInt(dash < 0 ? p : p.substring(0, dash).strip());
                to = dash < 0 ? from : Integer.parseInt(p.substring(dash + 1).strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(what + ": '" + p + "' is not an id or a range like 0-3");
            }
            if (from < 0 || to < from || to >= limit) {
                throw new IllegalArgumentException(what + ": '" + p + "' is outside 0-" + (limit - 1));
            }
            ids.set(from, to + 1);
        }
        return ids;
    }

    /** The inverse of {@link #parse}: {@code 0-3,8}. */
    public static String format(BitSet ids) {
        StringBuilder out = new StringBuilder();
        for (int from = ids.nextSetBit(0); from >= 0; ) {
            int to = ids.nextClearBit(from) - 1;
            if (!out.isEmpty()) {
                out.append(',');
            }
            out.append(from);
            if (to > from) {
                out.append('-').append(to);
            }
            from = ids.nextSetBit(to + 1);
        }
        return out.toString();
    }
}
