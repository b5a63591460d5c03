package io.moecluster.dispatch;

import io.moecluster.dispatch.placement.ExpertReplica;
import java.lang.foreign.MemorySegment;

/**
 * One expert batch of the layer being dispatched, from its first send to its answer: what was
 * sent, to which replicas in turn, and how it ended. The dispatcher allocates one per expert slot
 * at start and reuses them every layer.
 */
final class PendingBatch {
    /** Replicas one batch is sent to at most before the expert is reported unavailable. */
    static final int MAX_ATTEMPTS = 4;

    long batchId;
    int layer;
    int expert;
    int row;
    int count;
    MemorySegment rows;
    MemorySegment weights;
    /** Where the answer's rows go; null once answered or given up on (late duplicates are then dropped). */
    MemorySegment out;
    /** Replicas chosen for this batch, in order, whether or not the send reached them. */
    final ExpertReplica[] tried = new ExpertReplica[MAX_ATTEMPTS];
    int attempts;
    /**
     * The replica holding the batch: the last one it was sent to. Only it counts the batch's tokens
     * as outstanding, so only it is settled; null until a send succeeds.
     */
    ExpertReplica holder;
    long sentAtNanos;
    /** No other replica is left: the current one keeps the batch until the layer's deadline. */
    boolean lastChance;
    /** Why the batch failed for good, or null. */
    String failure;

    void start(long batchId, int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
               MemorySegment out) {
        this.batchId = batchId;
        this.layer = layer;
        this.expert = expert;
        this.rows = rows;
        this.row = row;
        this.count = count;
        this.weights = weights;
        this.out = out;
        this.attempts = 0;
        this.holder = null;
        this.lastChance = false;
        this.failure = null;
    }

    boolean open() {
        return out != null;
    }

    /** The replica it was last sent to (null before the first send reached one). */
    ExpertReplica current() {
        return holder;
    }

    /** The ids of the replicas tried, for error messages. */
    String triedIds() {
        StringBuilder ids = new StringBuilder();
        for (int i = 0; i < attempts; i++) {
            ids.append(i == 0 ? "" : ", ").append(tried[i].id());
        }
        return ids.toString();
    }

    /** Forgets the layer's references so nothing stays reachable between layers. */
    void clear() {
        out = null;
        rows = null;
        weights = null;
        for (int i = 0; i < attempts; i++) {
            tried[i] = null;
        }
        attempts = 0;
        holder = null;
    }
}
