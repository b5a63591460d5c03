package io.moecluster.cuda.backend;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import io.moecluster.core.backend.FfnBatch;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The expert FFN of the cuda backend, written once: {@code out_i = s_i * down(silu(gate(x_i)) * up(x_i))}
 * for every row of every expert of a batch, as a sequence of {@link FfnDevice} steps over a
 * workspace allocated when the program is made (nothing is allocated per batch):
 * <ol>
 *   <li>host: the experts' rows packed one after another into pinned memory ({@link BatchLayout}),
 *       with their routing weights (1 where a run has none);
 *   <li>rows, weights and the grouped GEMMs' pointer arrays copied to the device on the stream;
 *   <li>rows to BF16;
 *   <li>one grouped GEMM: every expert's stacked {@code [gate; up]} times its rows, BF16 out;
 *   <li>SiLU gating per expert: {@code h = bf16(silu(gate) * up)};
 *   <li>one grouped GEMM: every expert's {@code down} times its {@code h};
 *   <li>each row times its weight, to f32; copied back to pinned memory; the stream synchronized;
 *   <li>host: rows unpacked to where each run wants them.
 * </ol>
 * A batch with more rows or experts than the workspace holds runs in consecutive chunks.
 *
 * <p><b>Precision.</b> Weights and activations are BF16 on the device (8 significant bits) with f32
 * accumulation, and the GEMM outputs are BF16: each element carries a relative rounding error of
 * up to 2^-9 at the input, after gate/up, after the gating and after down. Against the CPU's f32
 * FFN on the same weights, rows agree to a relative error below 1e-2 (the host emulation in the
 * tests measures up to 9e-3 on the golden models' experts); the GPU check allows 2e-2.
 */
public final class ExpertFfnProgram {
    /** Groups (experts with rows) in one grouped GEMM; larger batches run in chunks. */
    public static final int DEFAULT_MAX_GROUPS = 512;

    private final FfnDevice device;
    private final DeviceWeightStore store;
    private final int hidden;
    private final int maxFfn;
    private final BatchLayout layout;
    private final long xF32;
    private final long xBf16;
    private final long gu;
    private final long h;
    private final long y;
    private final long out;
    private final long scales;
    private final long gateUpPointers;
    private final long downPointers;
    private final MemorySegment hostX;
    private final MemorySegment hostOut;
    private final MemorySegment hostScales;
    private final GroupedGemm gateUp;
    private final GroupedGemm down;
    private DeviceFfn[] entryWeights = new DeviceFfn[16];
    private int[] entryRows = new int[16];
    private int[] entryFfn = new int[16];

    /**
     * @param hidden the model's hidden size
     * @param maxFfn the widest FFN this program runs
     * @param capacityRows rows over all experts of one chunk
     * @param maxGroups experts with rows in one chunk
     */
    public ExpertFfnProgram(FfnDevice device, DeviceWeightStore store, int hidden, int maxFfn, int capacityRows,
                            int maxGroups) {
        this.device = device;
        this.store = store;
        this.hidden = hidden;
        this.maxFfn = maxFfn;
        this.layout = new BatchLayout(capacityRows, maxGroups);
        long rowsHidden = (long) capacityRows * hidden;
        xF32 = device.allocate(rowsHidden * 4);
        xBf16 = device.allocate(rowsHidden * 2);
        gu = device.allocate((long) capacityRows * 2 * maxFfn * 2);
        h = device.allocate((long) capacityRows * maxFfn * 2);
        y = device.allocate(rowsHidden * 2);
        out = device.allocate(rowsHidden * 4);
        scales = device.allocate((long) capacityRows * 4);
        gateUpPointers = device.allocate(3L * 8 * maxGroups);
        downPointers = device.allocate(3L * 8 * maxGroups);
        hostX = device.allocateHost(rowsHidden * 4);
        hostOut = device.allocateHost(rowsHidden * 4);
        hostScales = device.allocateHost((long) capacityRows * 4);
        gateUp = new GroupedGemm(device.allocateHost(GroupedGemm.bytes(maxGroups)), maxGroups);
        down = new GroupedGemm(device.allocateHost(GroupedGemm.bytes(maxGroups)), maxGroups);
    }

    /** Device bytes of the workspace for these sizes (what {@link #ExpertFfnProgram} allocates). */
    public static long workspaceBytes(int hidden, int maxFfn, int capacityRows, int maxGroups) {
        long rowsHidden = (long) capacityRows * hidden;
        return rowsHidden * 4 + rowsHidden * 2 + (long) capacityRows * 2 * maxFfn * 2 + (long) capacityRows * maxFfn * 2
                + rowsHidden * 2 + rowsHidden * 4 + (long) capacityRows * 4 + 2 * 3L * 8 * maxGroups;
    }

    public int hidden() {
        return hidden;
    }

    public int maxFfn() {
        return maxFfn;
    }

    public int capacityRows() {
        return layout.capacityRows();
    }

    /** Runs every entry of {@code batch}; their weights must be in the store. */
    public void run(FfnBatch batch) {
        int n = batch.size();
        ensureEntries(n);
        for (int i = 0; i < n; i++) {
            DeviceFfn w = store.get(batch.weights(i));
            if (w.hidden() != hidden || w.ffn() > maxFfn) {
                throw new IllegalArgumentException("FFN [hidden " + w.hidden() + ", ffn " + w.ffn()
                        + "] does not fit this program's hidden " + hidden + ", ffn up to " + maxFfn);
            }
            entryWeights[i] = w;
            entryRows[i] = batch.rows(i);
            entryFfn[i] = w.ffn();
        }
        int from = 0;
        while (from < n) {
            int end = layout.layout(entryRows, entryFfn, from, n);
            if (layout.groups() > 0) {
                pack(batch);
                issue();
                device.copyToHost(hostOut, 0, out, (long) layout.totalRows() * hidden * 4);
                device.synchronize();
                unpack(batch);
            }
            from = end;
        }
        Arrays.fill(entryWeights, 0, n, null);
    }

    /**
     * For benchmarks: lays out {@code count} experts with {@code rows[i]} rows each, in one chunk,
     * and copies the rows of {@code x} (packed, f32) and unit weights to the device. Then
     * {@link #computeStaged()} runs the device steps alone, as often as wanted.
     *
     * @return the FLOPs of one {@link #computeStaged()}'s GEMMs
     */
    public double stage(DeviceFfn[] weights, int[] rows, int count, MemorySegment x) {
        ensureEntries(count);
        for (int i = 0; i < count; i++) {
            entryWeights[i] = weights[i];
            entryRows[i] = rows[i];
            entryFfn[i] = weights[i].ffn();
        }
        if (layout.layout(entryRows, entryFfn, 0, count) != count) {
            throw new IllegalArgumentException("the batch does not fit one chunk of " + layout.capacityRows() + " rows");
        }
        long total = layout.totalRows();
        MemorySegment.copy(x, 0, hostX, 0, total * hidden * 4);
        for (long r = 0; r < total; r++) {
            hostScales.setAtIndex(JAVA_FLOAT, r, 1f);
        }
        layout.fill(entryWeights, hidden, xBf16, gu, h, y, gateUp, down);
        device.copyToDevice(xF32, hostX, 0, total * hidden * 4);
        device.copyToDevice(scales, hostScales, 0, total * 4);
        device.copyToDevice(gateUpPointers, gateUp.pointers(), 0, gateUp.pointers().byteSize());
        device.copyToDevice(downPointers, down.pointers(), 0, down.pointers().byteSize());
        device.synchronize();
        return gateUp.flops() + down.flops();
    }

    /** The device steps of the staged chunk (conversion, both grouped GEMMs, gating, scaling), not synchronized. */
    public void computeStaged() {
        compute();
    }

    /** The staged chunk's output rows, f32 {@code [rows, hidden]}, into {@code dst} (synchronizes). */
    public void fetchStaged(MemorySegment dst) {
        long bytes = (long) layout.totalRows() * hidden * 4;
        device.copyToHost(hostOut, 0, out, bytes);
        device.synchronize();
        MemorySegment.copy(hostOut, 0, dst, 0, bytes);
    }

    private void ensureEntries(int n) {
        if (entryRows.length < n) {
            entryWeights = new DeviceFfn[n];
            entryRows = new int[n];
            entryFfn = new int[n];
        }
    }

    private void pack(FfnBatch batch) {
        long rowBytes = (long) hidden * 4;
        for (int g = 0; g < layout.groups(); g++) {
            int i = layout.entry(g);
            int rows = layout.rows(g);
            long at = layout.rowOffset(g);
            MemorySegment.copy(batch.x(i), batch.xRow(i) * rowBytes, hostX, at * rowBytes, rows * rowBytes);
            MemorySegment s = batch.scales(i);
            if (s != null) {
                MemorySegment.copy(s, batch.scaleIndex(i) * 4, hostScales, at * 4, rows * 4L);
            } else {
                for (int r = 0; r < rows; r++) {
                    hostScales.setAtIndex(JAVA_FLOAT, at + r, 1f);
                }
            }
        }
    }

    private void issue() {
        long total = layout.totalRows();
        layout.fill(entryWeights, hidden, xBf16, gu, h, y, gateUp, down);
        device.copyToDevice(xF32, hostX, 0, total * hidden * 4);
        device.copyToDevice(scales, hostScales, 0, total * 4);
        device.copyToDevice(gateUpPointers, gateUp.pointers(), 0, gateUp.pointers().byteSize());
        device.copyToDevice(downPointers, down.pointers(), 0, down.pointers().byteSize());
        compute();
    }

    private void compute() {
        int total = layout.totalRows();
        device.f32ToBf16(xF32, xBf16, (long) total * hidden);
        device.groupedGemm(gateUp, gateUpPointers);
        for (int g = 0; g < layout.groups(); g++) {
            device.siluMul(gu + layout.guOffset(g) * 2, h + layout.hOffset(g) * 2, layout.rows(g), layout.ffn(g));
        }
        device.groupedGemm(down, downPointers);
        device.scaleRows(y, scales, out, total, hidden);
    }

    private void unpack(FfnBatch batch) {
        long rowBytes = (long) hidden * 4;
        for (int g = 0; g < layout.groups(); g++) {
            int i = layout.entry(g);
            MemorySegment.copy(hostOut, layout.rowOffset(g) * rowBytes, batch.out(i), batch.outRow(i) * rowBytes,
                    layout.rows(g) * rowBytes);
        }
    }
}
