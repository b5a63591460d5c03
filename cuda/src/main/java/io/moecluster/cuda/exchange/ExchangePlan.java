package io.moecluster.cuda.exchange;

import java.util.Arrays;

/**
 * One rank's side of an all-to-all with per-peer counts: rows it sends to each peer (contiguous in
 * its send buffer, peers in rank order) and rows it receives from each (contiguous in its receive
 * buffer, same order). The counts are what the Aeron batch header carries, so every pair agrees on
 * them before NCCL moves a byte; a peer with no rows either way gets no send or receive at all.
 */
public final class ExchangePlan {
    private final int[] send;
    private final int[] recv;
    private final long[] sendOffset;
    private final long[] recvOffset;
    private final long sendRows;
    private final long recvRows;

    /**
     * @param sendRows rows for each peer (index = rank), this rank's own included
     * @param recvRows rows from each peer
     */
    public ExchangePlan(int[] sendRows, int[] recvRows) {
        if (sendRows.length != recvRows.length || sendRows.length == 0) {
            throw new IllegalArgumentException("send and receive counts for the same ranks, got " + sendRows.length
                    + " and " + recvRows.length);
        }
        this.send = sendRows.clone();
        this.recv = recvRows.clone();
        this.sendOffset = new long[send.length];
        this.recvOffset = new long[recv.length];
        long s = 0;
        long r = 0;
        for (int p = 0; p < send.length; p++) {
            if (send[p] < 0 || recv[p] < 0) {
                throw new IllegalArgumentException("negative row count for rank " + p);
            }
            sendOffset[p] = s;
            recvOffset[p] = r;
            s += send[p];
            r += recv[p];
        }
        this.sendRows = s;
        this.recvRows = r;
    }

    public int ranks() {
        return send.length;
    }

    public int sendRows(int peer) {
        return send[peer];
    }

    public int recvRows(int peer) {
        return recv[peer];
    }

    /** First row for {@code peer} in the send buffer. */
    public long sendOffset(int peer) {
        return sendOffset[peer];
    }

    /** First row from {@code peer} in the receive buffer. */
    public long recvOffset(int peer) {
        return recvOffset[peer];
    }

    public long totalSendRows() {
        return sendRows;
    }

    public long totalRecvRows() {
        return recvRows;
    }

    /**
     * Whether {@code plans} (one per rank, index = rank) agree pairwise: what rank a sends to b is
     * what b expects from a. NCCL would hang on a mismatch, so this is checked where all are known.
     */
    public static boolean consistent(ExchangePlan[] plans) {
        for (int a = 0; a < plans.length; a++) {
            if (plans[a].ranks() != plans.length) {
                return false;
            }
            for (int b = 0; b < plans.length; b++) {
                if (plans[a].send[b] != plans[b].recv[a]) {
                    return false;
                }
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "send " + Arrays.toString(send) + ", receive " + Arrays.toString(recv);
    }
}
