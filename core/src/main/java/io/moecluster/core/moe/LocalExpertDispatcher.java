package io.moecluster.core.moe;

import java.lang.foreign.MemorySegment;

/**
 * Runs the dispatches of a layer on an in-process {@link ExpertBank}: the single-process engine's
 * experts. Each dispatch is queued and {@link #awaitAll} runs them together, so a device backend
 * computes every expert of the layer in one grouped call; on the CPU each runs as before, in order.
 */
public final class LocalExpertDispatcher implements ExpertDispatcher {
    private final ExpertBank bank;

    public LocalExpertDispatcher(ExpertBank bank) {
        this.bank = bank;
    }

    @Override
    public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                         MemorySegment out) {
        if (!bank.hosts(layer, expert)) {
            throw new ExpertUnavailableException(layer, expert, "expert " + expert + " of layer " + layer
                    + " is not hosted in this process");
        }
        bank.queue(layer, expert, rows, row, count, weights, row, out, row);
    }

    @Override
    public void awaitAll() {
        bank.runQueued();
    }

    @Override
    public void close() {
        bank.close();
    }
}
