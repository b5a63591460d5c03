package io.moecluster.cuda.exchange;

import io.moecluster.cuda.bindings.Nccl;
import io.moecluster.cuda.bindings.NcclComm;
import io.moecluster.cuda.bindings.NcclUniqueId;
import io.moecluster.cuda.bindings.Stream;
import java.lang.foreign.MemorySegment;

/**
 * One rank of an NCCL communicator moving token rows GPU to GPU: {@link #allToAll} issues, inside
 * one {@code ncclGroupStart}/{@code ncclGroupEnd}, a send to every peer with rows for it and a
 * receive from every peer with rows for this rank, all on the caller's stream. NCCL refuses two
 * ranks on one GPU, so on a single-GPU machine the only communicator is one rank sending to itself.
 */
public final class NcclExchange implements AutoCloseable {
    private final Nccl nccl;
    private final NcclComm comm;

    private NcclExchange(Nccl nccl, NcclComm comm) {
        this.nccl = nccl;
        this.comm = comm;
    }

    /** Joins the communicator {@code id} as {@code rank} of {@code ranks} on the current device (blocks until all joined). */
    public static NcclExchange join(Nccl nccl, NcclUniqueId id, int ranks, int rank) {
        return new NcclExchange(nccl, nccl.initRank(ranks, id, rank));
    }

    public int rank() {
        return comm.rank();
    }

    public int ranks() {
        return comm.ranks();
    }

    /**
     * Sends and receives the rows of {@code plan}: rows of {@code rowElements} elements of NCCL type
     * {@code type} ({@link Nccl#FLOAT32}, {@link Nccl#BFLOAT16}) of {@code elementBytes} bytes, from
     * device buffer {@code send} to the peers' {@code recv} buffers. Asynchronous on {@code stream}.
     */
    public void allToAll(long send, long recv, ExchangePlan plan, int rowElements, int type, int elementBytes,
                         Stream stream) {
        if (plan.ranks() != comm.ranks()) {
            throw new IllegalArgumentException("a plan for " + plan.ranks() + " ranks on a communicator of " + comm.ranks());
        }
        long rowBytes = (long) rowElements * elementBytes;
        nccl.groupStart();
        try {
            for (int peer = 0; peer < plan.ranks(); peer++) {
                if (plan.sendRows(peer) > 0) {
                    nccl.send(MemorySegment.ofAddress(send + plan.sendOffset(peer) * rowBytes),
                            (long) plan.sendRows(peer) * rowElements, type, peer, comm, stream);
                }
                if (plan.recvRows(peer) > 0) {
                    nccl.recv(MemorySegment.ofAddress(recv + plan.recvOffset(peer) * rowBytes),
                            (long) plan.recvRows(peer) * rowElements, type, peer, comm, stream);
                }
            }
        } finally {
            nccl.groupEnd();
        }
    }

    @Override
    public void close() {
        comm.close();
    }
}
