package io.moecluster.cuda.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.cuda.bindings.Cublas;
import io.moecluster.cuda.bindings.Nvrtc;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** The host-side planning of the GPU path: batch layout, offsets and the grouped GEMMs' arguments. */
class BatchLayoutTest {
    @Test
    void expertsArePackedInOrderSkippingEmptyOnesUntilTheWorkspaceIsFull() {
        BatchLayout l = new BatchLayout(10, 8);
        int[] rows = {3, 0, 4, 2, 5};
        int[] ffn = {16, 16, 32, 16, 16};
        assertThat(l.layout(rows, ffn, 0, 5)).isEqualTo(4);
        assertThat(l.groups()).isEqualTo(3);
        assertThat(l.totalRows()).isEqualTo(9);
        assertThat(new int[] {l.entry(0), l.entry(1), l.entry(2)}).containsExactly(0, 2, 3);
        assertThat(new long[] {l.rowOffset(0), l.rowOffset(1), l.rowOffset(2)}).containsExactly(0, 3, 7);
        assertThat(new long[] {l.guOffset(0), l.guOffset(1), l.guOffset(2)}).containsExactly(0, 3 * 32, 3 * 32 + 4 * 64);
        assertThat(new long[] {l.hOffset(0), l.hOffset(1), l.hOffset(2)}).containsExactly(0, 3 * 16, 3 * 16 + 4 * 32);
        // the rest in the next chunk
        assertThat(l.layout(rows, ffn, 4, 5)).isEqualTo(5);
        assertThat(l.groups()).isEqualTo(1);
        assertThat(l.entry(0)).isEqualTo(4);
        assertThat(l.rowOffset(0)).isZero();
    }

    @Test
    void theGroupLimitSplitsToo() {
        BatchLayout l = new BatchLayout(100, 2);
        int[] rows = {1, 1, 1};
        int[] ffn = {8, 8, 8};
        assertThat(l.layout(rows, ffn, 0, 3)).isEqualTo(2);
        assertThat(l.layout(rows, ffn, 2, 3)).isEqualTo(3);
        assertThat(l.layout(new int[] {0, 0}, ffn, 0, 2)).isEqualTo(2);
        assertThat(l.groups()).isZero();
        assertThatThrownBy(() -> l.layout(new int[] {101}, ffn, 0, 1)).hasMessageContaining("101 rows");
    }

    @Test
    void theGroupedGemmsComputeRowMajorLinearsAsColumnMajorTransposes() {
        try (Arena arena = Arena.ofConfined()) {
            int hidden = 64;
            BatchLayout l = new BatchLayout(16, 4);
            l.layout(new int[] {2, 5}, new int[] {128, 96}, 0, 2);
            DeviceFfn[] w = {new DeviceFfn(0x10000, 0x20000, hidden, 128), new DeviceFfn(0x30000, 0x40000, hidden, 96)};
            GroupedGemm gateUp = new GroupedGemm(arena.allocate(GroupedGemm.bytes(4)), 4);
            GroupedGemm down = new GroupedGemm(arena.allocate(GroupedGemm.bytes(4)), 4);
            long x = 0x100000;
            long gu = 0x200000;
            long h = 0x300000;
            long y = 0x400000;
            l.fill(w, hidden, x, gu, h, y, gateUp, down);
            assertThat(gateUp.count()).isEqualTo(2);
            // [gate; up] [2 ffn, hidden] row-major times x [rows, hidden] row-major: m = 2 ffn, n = rows, k = hidden
            assertThat(gateUp.opA(1)).isEqualTo(Cublas.OP_T);
            assertThat(gateUp.opB(1)).isEqualTo(Cublas.OP_N);
            assertThat(new int[] {gateUp.m(1), gateUp.n(1), gateUp.k(1)}).containsExactly(192, 5, 64);
            assertThat(new int[] {gateUp.lda(1), gateUp.ldb(1), gateUp.ldc(1)}).containsExactly(64, 64, 192);
            assertThat(gateUp.a(1)).isEqualTo(0x30000);
            assertThat(gateUp.b(1)).isEqualTo(x + 2L * hidden * 2);
            assertThat(gateUp.c(1)).isEqualTo(gu + 2L * 256 * 2);
            // down [hidden, ffn] times h [rows, ffn]: m = hidden, n = rows, k = ffn
            assertThat(new int[] {down.m(1), down.n(1), down.k(1)}).containsExactly(64, 5, 96);
            assertThat(new int[] {down.lda(1), down.ldb(1), down.ldc(1)}).containsExactly(96, 96, 64);
            assertThat(down.a(1)).isEqualTo(0x40000);
            assertThat(down.b(1)).isEqualTo(h + 2L * 128 * 2);
            assertThat(down.c(1)).isEqualTo(y + 2L * hidden * 2);
            assertThat(gateUp.alpha().getAtIndex(ValueLayout.JAVA_FLOAT, 1)).isEqualTo(1f);
            assertThat(gateUp.groupSize().getAtIndex(ValueLayout.JAVA_INT, 1)).isEqualTo(1);
            assertThat(gateUp.flops() + down.flops()).isEqualTo(2.0 * 3 * hidden * (2 * 128 + 5 * 96));
            assertThatThrownBy(() -> l.fill(new DeviceFfn[] {w[1], w[0]}, hidden, x, gu, h, y, gateUp, down))
                    .hasMessageContaining("do not match");
        }
    }

    @Test
    void kernelsGoToCubinWhereNvrtcIsNewerThanTheDriver() {
        assertThat(KernelTarget.choose(new int[] {13, 1}, 13000)).isEqualTo(Nvrtc.Output.CUBIN);
        assertThat(KernelTarget.choose(new int[] {13, 0}, 13000)).isEqualTo(Nvrtc.Output.PTX);
        assertThat(KernelTarget.choose(new int[] {12, 8}, 13000)).isEqualTo(Nvrtc.Output.PTX);
        assertThat(KernelTarget.explain(Nvrtc.Output.CUBIN, new int[] {13, 1}, 13000, 9, 0))
                .isEqualTo("CUBIN sm_90 (NVRTC 13.1 is newer than the driver's CUDA 13.0)");
    }
}
