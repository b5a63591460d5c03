package io.moecluster.cuda.bindings;

import java.lang.foreign.MemorySegment;

/** An {@code ncclComm_t} of one rank; {@code ncclCommDestroy} on close. */
public final class NcclComm extends NativeHandle {
    private final Nccl nccl;
    private final int ranks;
    private final int rank;

    NcclComm(Nccl nccl, MemorySegment ptr, int ranks, int rank) {
        super("ncclComm_t", ptr);
        this.nccl = nccl;
        this.ranks = ranks;
        this.rank = rank;
    }

    public int ranks() {
        return ranks;
    }

    public int rank() {
        return rank;
    }

    @Override
    protected void destroy(MemorySegment p) {
        nccl.destroy(p);
    }
}
