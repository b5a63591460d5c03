package io.moecluster.cli.cluster;

import java.util.Arrays;

/**
 * When to add a replica: an expert whose share of the routed tokens stays above a threshold for
 * several samples in a row, below a replica cap. One decision per sample (the hottest expert), so
 * the effect of a new replica is seen before the next one is added. Shares are of tokens routed,
 * so with top-k routing a uniform load gives each of n experts 1/n; the shared expert, where the
 * model has one, sees every token and counts like any expert.
 */
public final class AutoscalePolicy {
    private final double threshold;
    private final int sustain;
    private final int maxReplicas;
    private final double minTokensPerSecond;
    private int[] hotSamples = new int[0];

    /**
     * @param threshold share of all routed tokens (0-1) above which an expert is hot
     * @param sustain consecutive hot samples before a replica is added
     * @param minTokensPerSecond below this total the cluster is idle and nothing is decided
     */
    public AutoscalePolicy(double threshold, int sustain, int maxReplicas, double minTokensPerSecond) {
        if (!(threshold > 0 && threshold < 1)) {
            throw new IllegalArgumentException("--threshold must be between 0 and 1, got " + threshold);
        }
        if (sustain < 1 || maxReplicas < 1) {
            throw new IllegalArgumentException("--sustain and --max-replicas must be >= 1");
        }
        this.threshold = threshold;
        this.sustain = sustain;
        this.maxReplicas = maxReplicas;
        this.minTokensPerSecond = minTokensPerSecond;
    }

    /**
     * @param tokensPerSecond per expert, from the router's status
     * @param replicas per expert, the services hosting it now
     * @return the expert to give one more replica, or -1
     */
    public int observe(double[] tokensPerSecond, int[] replicas) {
        if (hotSamples.length != tokensPerSecond.length) {
            hotSamples = new int[tokensPerSecond.length];
        }
        double total = 0;
        for (double r : tokensPerSecond) {
            total += r;
        }
        if (total < minTokensPerSecond) {
            Arrays.fill(hotSamples, 0);
            return -1;
        }
        int pick = -1;
        for (int e = 0; e < tokensPerSecond.length; e++) {
            boolean hot = tokensPerSecond[e] / total > threshold;
            hotSamples[e] = hot ? hotSamples[e] + 1 : 0;
            if (hot && hotSamples[e] >= sustain && replicas[e] < maxReplicas
                    && (pick < 0 || tokensPerSecond[e] > tokensPerSecond[pick])) {
                pick = e;
            }
        }
        if (pick >= 0) {
            hotSamples[pick] = 0;
        }
        return pick;
    }
}
