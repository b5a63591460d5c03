package io.moecluster.telemetry;

import java.util.Locale;

/**
 * Which scheduling steps of an attention service get per-layer spans (the attention's MoE layer
 * span, the router's dispatch span and the experts' batch spans). Step spans are kept for every
 * step; per-layer spans are layers x steps, so by default only every {@value #DEFAULT_EVERY}th
 * step has them. The attention service decides per step and propagates "not sampled" in the SBE
 * trace flags, so routers and experts create nothing for the other steps.
 *
 * <p>Written {@code all}, {@code none} or {@code every:N} ({@code every:1} = {@code all}).
 */
public record LayerSampling(int every) {
    public static final int DEFAULT_EVERY = 16;
    public static final LayerSampling ALL = new LayerSampling(1);
    public static final LayerSampling NONE = new LayerSampling(0);
    public static final LayerSampling DEFAULT = new LayerSampling(DEFAULT_EVERY);

    public LayerSampling {
        if (every < 0) {
            throw new IllegalArgumentException("layer sampling: every must be >= 0, got " + every);
        }
    }

    /** Parses {@code all}, {@code none} or {@code every:N}; null or blank gives {@link #DEFAULT}. */
    public static LayerSampling parse(String text) {
        if (text == null || text.isBlank()) {
            return DEFAULT;
        }
        String t = text.trim().toLowerCase(Locale.ROOT);
        switch (t) {
            case "all":
                return ALL;
            case "none":
                return NONE;
            default:
                break;
        }
        if (t.startsWith("every:")) {
            try {
                int n = Integer.parseInt(t.substring("every:".length()).trim());
                if (n >= 1) {
                    return new LayerSampling(n);
                }
            } catch (NumberFormatException ignored) {
                // falls through to the error below
            }
        }
        throw new IllegalArgumentException("trace layers: '" + text + "' is not all, none or every:N (N >= 1)");
    }

    /** Whether step number {@code step} (0, 1, 2, ... per attention service) gets per-layer spans. */
    public boolean sampled(long step) {
        return every == 1 || (every > 1 && step % every == 0);
    }

    @Override
    public String toString() {
        return every == 0 ? "none" : every == 1 ? "all" : "every:" + every;
    }
}
