package io.moecluster.core.moe;

import io.moecluster.core.kernels.Kernels;
import java.lang.foreign.MemorySegment;

/**
 * Sums each token's k expert outputs, weighted, in ascending expert id: the order transformers
 * uses, and one that does not depend on which expert answered first in a cluster.
 *
 * <p>Arithmetic: each contribution arrives rounded as {@code w * out} (the {@link ExpertBank}
 * scales it), then contributions are added in order starting from the first, with no fused
 * multiply-add, as {@code index_add_} does in transformers.
 */
public final class MoeCombiner {
    private MoeCombiner() {
    }

    /** Writes each token's sum of its k scaled expert rows (grouped as {@code routing} lays them out) to {@code output}. */
    public static void sumScaled(MoeRouting routing, MemorySegment scaledOut, MemorySegment output, int hidden) {
        int tokens = routing.tokens();
        for (int t = 0; t < tokens; t++) {
            MemorySegment.copy(scaledOut, (long) routing.slotRow(t, 0) * hidden * 4, output, (long) t * hidden * 4,
                    (long) hidden * 4);
            for (int j = 1; j < routing.topK(); j++) {
                Kernels.add(scaledOut, (long) routing.slotRow(t, j) * hidden, output, (long) t * hidden, hidden);
            }
        }
    }
}
