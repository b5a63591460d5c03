package io.moecluster.dispatch.placement;

/**
 * Which replica of an expert gets a batch: a pure policy over the replicas' counters, with no
 * I/O of its own (whether a replica's publication is connected comes in as {@link Links}).
 *
 * <ol>
 *   <li>Live replicas (connected, not in quarantine) first: the one with the fewest tokens
 *       outstanding, ties to the one routed the fewest tokens of this expert, so equal replicas
 *       share the load evenly; a remaining tie goes to the one listed first.</li>
 *   <li>Then replicas whose publication is not connected yet (just joined, or just restarted).</li>
 *   <li>Then quarantined replicas, the one due back first: a lone replica that was restarted must
 *       get traffic again.</li>
 * </ol>
 *
 * Replicas already tried for this batch are skipped. A replica that left the placement (drained)
 * is not among the candidates at all.
 */
public final class ReplicaChoice {
    /** Whether a replica's publication currently has a subscriber. */
    @FunctionalInterface
    public interface Links {
        boolean connected(ExpertReplica replica);
    }

    private static final int LIVE = 0;
    private static final int NOT_CONNECTED = 1;
    private static final int QUARANTINED = 2;

    private ReplicaChoice() {
    }

    /**
     * @param candidates the replicas hosting the expert, in placement order
     * @param tried replicas already tried for this batch, in {@code tried[0..triedCount)}
     * @return the replica to send to, or null when none is left
     */
    public static ExpertReplica choose(ExpertReplica[] candidates, int expert, ExpertReplica[] tried, int triedCount,
                                       long nowNanos, Links links) {
        ExpertReplica best = null;
        int bestRank = Integer.MAX_VALUE;
        for (ExpertReplica r : candidates) {
            if (contains(tried, triedCount, r)) {
                continue;
            }
            int rank = r.quarantined(nowNanos) ? QUARANTINED : links.connected(r) ? LIVE : NOT_CONNECTED;
            if (best == null || rank < bestRank || (rank == bestRank && better(r, best, rank, expert))) {
                best = r;
                bestRank = rank;
            }
        }
        return best;
    }

    private static boolean better(ExpertReplica r, ExpertReplica than, int rank, int expert) {
        if (rank == QUARANTINED) {
            return r.quarantinedUntil() - than.quarantinedUntil() < 0;
        }
        long a = r.outstandingTokens();
        long b = than.outstandingTokens();
        if (a != b) {
            return a < b;
        }
        return r.tokensRouted(expert) < than.tokensRouted(expert);
    }

    private static boolean contains(ExpertReplica[] tried, int count, ExpertReplica r) {
        for (int i = 0; i < count; i++) {
            if (tried[i] == r) {
                return true;
            }
        }
        return false;
    }
}
