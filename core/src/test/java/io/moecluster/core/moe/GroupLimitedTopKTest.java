package io.moecluster.core.moe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.GroupLimitedRouting;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * DeepSeek-V3's group-limited sigmoid routing on a hand-computed example. Tolerance: weights are
 * f32 (sigmoid rounded once, then a sum, a division and a product), within 1e-6 of the double
 * values below.
 */
class GroupLimitedTopKTest {
    private static WeightMatrix identityGate(Arena arena, int experts) {
        MemorySegment w = arena.allocate((long) experts * experts * 4);
        for (int e = 0; e < experts; e++) {
            w.setAtIndex(ValueLayout.JAVA_FLOAT, (long) e * experts + e, 1f);
        }
        return WeightMatrix.of("gate", w, DType.F32, experts, experts);
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /**
     * 8 experts in 4 groups of 2, keep 2 groups, top-3, scaling 2.5.
     * <pre>
     * logits     2.0   -1.0  | 0.5   0.4  | 1.5   1.4  | -2.0   3.0
     * sigmoid    .8808 .2689 | .6225 .5987 | .8176 .8022 | .1192 .9526
     * bias       0     0     | .3    .3    | 0     0     | 0     -.9
     * choice     .8808 .2689 | .9225 .8987 | .8176 .8022 | .1192 .0526
     * group sum  1.1497      | 1.8212      | 1.6198      | .1718        -> keep groups 1 and 2
     * top-3 of the kept: experts 2, 3, 4 (expert 0 scores above 4 but its group is dropped;
     * expert 7 has the best sigmoid but its bias takes it out)
     * weights    s2, s3, s4 / (s2 + s3 + s4 + 1e-20) * 2.5
     * </pre>
     */
    @Test
    void handComputedExample() {
        int experts = 8;
        float[] logits = {2.0f, -1.0f, 0.5f, 0.4f, 1.5f, 1.4f, -2.0f, 3.0f};
        float[] bias = {0, 0, 0.3f, 0.3f, 0, 0, 0, -0.9f};
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1, "t")) {
            MemorySegment x = arena.allocate(experts * 4L);
            MemorySegment.copy(logits, 0, x, ValueLayout.JAVA_FLOAT, 0, experts);
            MemorySegment b = arena.allocate(experts * 4L);
            MemorySegment.copy(bias, 0, b, ValueLayout.JAVA_FLOAT, 0, experts);
            for (boolean norm : new boolean[] {true, false}) {
                GroupLimitedTopK selection = new GroupLimitedTopK(experts, 3, new GroupLimitedRouting(4, 2, 2.5), norm,
                        new MemorySegment[] {null, b});
                MoeRouting routing = new MoeRouting(1, experts, 3);
                new MoeGate(experts, 3, selection, 1, new MatMul(pool), arena).route(1, identityGate(arena, experts), x, 1,
                        routing);
                assertThat(new int[] {routing.expert(0, 0), routing.expert(0, 1), routing.expert(0, 2)})
                        .containsExactly(2, 3, 4);
                double s2 = sigmoid(0.5);
                double s3 = sigmoid(0.4);
                double s4 = sigmoid(1.5);
                double d = norm ? s2 + s3 + s4 + 1e-20 : 1;
                assertThat((double) routing.weight(0, 0)).isCloseTo(s2 / d * 2.5, within(1e-6));
                assertThat((double) routing.weight(0, 1)).isCloseTo(s3 / d * 2.5, within(1e-6));
                assertThat((double) routing.weight(0, 2)).isCloseTo(s4 / d * 2.5, within(1e-6));
            }
            // Layer 0 has no bias: the choice is the plain sigmoid. Groups: {0,1} 1.1497, {2,3} 1.2212,
            // {4,5} 1.6198, {6,7} 1.0718 -> keep groups 2 and 1; top-3: experts 4, 5, 2.
            GroupLimitedTopK selection = new GroupLimitedTopK(experts, 3, new GroupLimitedRouting(4, 2, 2.5), true,
                    new MemorySegment[] {null, b});
            MoeRouting routing = new MoeRouting(1, experts, 3);
            new MoeGate(experts, 3, selection, 1, new MatMul(pool), arena).route(0, identityGate(arena, experts), x, 1,
                    routing);
            assertThat(new int[] {routing.expert(0, 0), routing.expert(0, 1), routing.expert(0, 2)})
                    .containsExactly(2, 4, 5);
        }
    }

    /** Masked experts count as 0 (transformers' masked_fill(0.0)), and ties go to the lower id. */
    @Test
    void tiesGoToTheLowerGroupAndExpert() {
        int experts = 4;
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1, "t")) {
            MemorySegment x = arena.allocate(2L * experts * 4);
            // Token 0: all equal; groups tie, group 0 kept; experts 0 and 1 chosen.
            // Token 1: group 1 is better, expert 3 beats 2.
            float[] l = {0, 0, 0, 0, 0, 0, 1, 2};
            MemorySegment.copy(l, 0, x, ValueLayout.JAVA_FLOAT, 0, l.length);
            GroupLimitedTopK selection = new GroupLimitedTopK(experts, 2, new GroupLimitedRouting(2, 1, 1.0), true, null);
            MoeRouting routing = new MoeRouting(2, experts, 2);
            new MoeGate(experts, 2, selection, 2, new MatMul(pool), arena).route(identityGate(arena, experts), x, 2, routing);
            assertThat(new int[] {routing.expert(0, 0), routing.expert(0, 1)}).containsExactly(0, 1);
            assertThat(routing.weight(0, 0)).isCloseTo(0.5f, within(1e-7f));
            assertThat(new int[] {routing.expert(1, 0), routing.expert(1, 1)}).containsExactly(2, 3);
        }
    }

    @Test
    void refusesGroupsThatCannotHoldTheChoice() {
        assertThatThrownBy(() -> new GroupLimitedTopK(8, 5, new GroupLimitedRouting(4, 2, 1.0), true, null))
                .hasMessageContaining("cannot choose 5 of 8");
        assertThatThrownBy(() -> new GroupLimitedTopK(6, 2, new GroupLimitedRouting(4, 2, 1.0), true, null))
                .hasMessageContaining("cannot choose");
    }
}
