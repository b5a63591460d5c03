package io.moecluster.core.moe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class MoeGateTest {
    /** A gate of identity rows: logits equal the input, so the expected routing is computed by hand. */
    private static WeightMatrix identityGate(Arena arena, int experts) {
        MemorySegment w = arena.allocate((long) experts * experts * 4);
        for (int e = 0; e < experts; e++) {
            w.setAtIndex(ValueLayout.JAVA_FLOAT, (long) e * experts + e, 1f);
        }
        return WeightMatrix.of("gate", w, DType.F32, experts, experts);
    }

    @Test
    void topKByProbabilitySortedByExpertIdWithRenormalisation() {
        int experts = 8;
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1, "t")) {
            MemorySegment x = arena.allocate(2L * experts * 4);
            float[][] logits = {
                {0, 3, 0, 0, 0, 0, 2.5f, 0},   // token 0: experts 1 and 6
                {1, 1, 1, 1, 1, 1, 1, 1}        // token 1: all equal, ties go to the lower ids 0 and 1
            };
            for (int t = 0; t < 2; t++) {
                MemorySegment.copy(logits[t], 0, x, ValueLayout.JAVA_FLOAT, (long) t * experts * 4, experts);
            }
            MoeRouting routing = new MoeRouting(2, experts, 2);
            new MoeGate(experts, 2, true, 2, new MatMul(pool), arena).route(identityGate(arena, experts), x, 2, routing);

            assertThat(new int[] {routing.expert(0, 0), routing.expert(0, 1)}).containsExactly(1, 6);
            double p1 = Math.exp(3);
            double p6 = Math.exp(2.5);
            assertThat(routing.weight(0, 0)).isCloseTo((float) (p1 / (p1 + p6)), within(1e-6f));
            assertThat(routing.weight(0, 1)).isCloseTo((float) (p6 / (p1 + p6)), within(1e-6f));
            assertThat(new int[] {routing.expert(1, 0), routing.expert(1, 1)}).containsExactly(0, 1);
            assertThat(routing.weight(1, 0)).isCloseTo(0.5f, within(1e-6f));

            // Grouping: expert 1 serves both tokens (rows in token order), experts 0 and 6 one each.
            assertThat(routing.expertCount(1)).isEqualTo(2);
            assertThat(routing.expertCount(0)).isEqualTo(1);
            assertThat(routing.expertCount(6)).isEqualTo(1);
            int row = routing.expertOffset(1);
            assertThat(routing.rowToken(row)).isZero();
            assertThat(routing.rowToken(row + 1)).isEqualTo(1);
            assertThat(routing.slotRow(0, 0)).isEqualTo(row);
            assertThat(routing.slotRow(1, 1)).isEqualTo(row + 1);
        }
    }

    @Test
    void withoutRenormalisationWeightsAreSoftmaxProbabilities() {
        int experts = 4;
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1, "t")) {
            MemorySegment x = arena.allocate((long) experts * 4);
            float[] l = {0.5f, 2f, 1f, -1f};
            MemorySegment.copy(l, 0, x, ValueLayout.JAVA_FLOAT, 0, experts);
            MoeRouting routing = new MoeRouting(1, experts, 2);
            new MoeGate(experts, 2, false, 1, new MatMul(pool), arena).route(identityGate(arena, experts), x, 1, routing);
            double z = Math.exp(0.5) + Math.exp(2) + Math.exp(1) + Math.exp(-1);
            assertThat(routing.expert(0, 0)).isEqualTo(1);
            assertThat(routing.expert(0, 1)).isEqualTo(2);
            assertThat(routing.weight(0, 0)).isCloseTo((float) (Math.exp(2) / z), within(1e-6f));
            assertThat(routing.weight(0, 1)).isCloseTo((float) (Math.exp(1) / z), within(1e-6f));
        }
    }
}
