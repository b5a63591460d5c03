package io.moecluster.core.forward;

import io.moecluster.core.kernels.Kernels;
import java.lang.foreign.MemorySegment;

/**
 * Sums each token's k expert outputs, weighted, in ascending expert id: the order transformers
 * uses, and one that does not depend on which expert answered first in a cluster.
 *
 * <p>Arithmetic, fixed so that every mode gives the same bits: each contribution is rounded as
 * {@code w * out} (an expert service may do this step), then contributions are added in order
 * starting from the first, with no fused multiply-add.
 */
public final class MoeCombiner {
    private MoeCombiner() {
    }

    /**
     * Combines rows an expert service already scaled by their weights ({@link ExpertBank}):
     * the same sum as {@link #combine} without the multiplications.
     */
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

    /**
     * @param expertOut grouped rows as laid out by {@code routing}, {@code [routing.rows(), hidden]}
     * @param output {@code [tokens, hidden]}, overwritten
     */
    public static void combine(MoeRouting routing, MemorySegment expertOut, MemorySegment output, int hidden) {
        int tokens = routing.tokens();
        for (int t = 0; t < tokens; t++) {
            // The first term is a plain product, as 0 + w*x is in the reference.
            Kernels.scaleInto(routing.weight(t, 0), expertOut, (long) routing.slotRow(t, 0) * hidden,
                    output, (long) t * hidden, hidden);
            for (int j = 1; j < routing.topK(); j++) {
                Kernels.addScaled(routing.weight(t, j), expertOut, (long) routing.slotRow(t, j) * hidden,
                        output, (long) t * hidden, hidden);
            }
        }
    }
}
