package io.moecluster.cuda.backend;

import io.moecluster.cuda.bindings.Cublas;

/**
 * Where the experts of one batch go in the device workspace: the host-side planning of
 * {@link ExpertFfnProgram}. Entries are laid out in order, each with rows, as one group of the
 * grouped GEMMs, until the next would overflow the workspace's rows or groups; the program runs
 * that chunk and lays out the rest. Entries without rows get no group.
 *
 * <p>Packed buffers, per group g in order: activations and outputs {@code [rows_g, hidden]} from
 * row {@code rowOffset[g]}; the gate/up products {@code [rows_g, 2 ffn_g]} from element
 * {@code guOffset[g]}; the gated products {@code [rows_g, ffn_g]} from element {@code hOffset[g]}.
 */
public final class BatchLayout {
    private final int capacityRows;
    private final int maxGroups;
    private final int[] entry;
    private final int[] rows;
    private final int[] ffn;
    private final long[] rowOffset;
    private final long[] guOffset;
    private final long[] hOffset;
    private int groups;
    private int totalRows;

    public BatchLayout(int capacityRows, int maxGroups) {
        if (capacityRows < 1 || maxGroups < 1) {
            throw new IllegalArgumentException("a workspace of " + capacityRows + " rows and " + maxGroups + " groups");
        }
        this.capacityRows = capacityRows;
        this.maxGroups = maxGroups;
        entry = new int[maxGroups];
        rows = new int[maxGroups];
        ffn = new int[maxGroups];
        rowOffset = new long[maxGroups];
        guOffset = new long[maxGroups];
        hOffset = new long[maxGroups];
    }

    /**
     * Lays out entries {@code [from, count)} (rows and FFN width of each) until one does not fit.
     *
     * @return the index after the last entry laid out; {@code count} when all fit
     */
    public int layout(int[] entryRows, int[] entryFfn, int from, int count) {
        groups = 0;
        totalRows = 0;
        long gu = 0;
        long h = 0;
        int i = from;
        for (; i < count; i++) {
            int r = entryRows[i];
            if (r < 0) {
                throw new IllegalArgumentException("entry " + i + " has " + r + " rows");
            }
            if (r > capacityRows) {
                throw new IllegalArgumentException("entry " + i + " has " + r + " rows, more than the workspace's "
                        + capacityRows);
            }
            if (r == 0) {
                continue;
            }
            if (totalRows + r > capacityRows || groups == maxGroups) {
                break;
            }
            int g = groups++;
            entry[g] = i;
            rows[g] = r;
            ffn[g] = entryFfn[i];
            rowOffset[g] = totalRows;
            guOffset[g] = gu;
            hOffset[g] = h;
            totalRows += r;
            gu += 2L * r * entryFfn[i];
            h += (long) r * entryFfn[i];
        }
        return i;
    }

    public int groups() {
        return groups;
    }

    public int totalRows() {
        return totalRows;
    }

    /** The batch entry of group {@code g}. */
    public int entry(int g) {
        return entry[check(g)];
    }

    public int rows(int g) {
        return rows[check(g)];
    }

    public int ffn(int g) {
        return ffn[check(g)];
    }

    public long rowOffset(int g) {
        return rowOffset[check(g)];
    }

    public long guOffset(int g) {
        return guOffset[check(g)];
    }

    public long hOffset(int g) {
        return hOffset[check(g)];
    }

    public int capacityRows() {
        return capacityRows;
    }

    public int maxGroups() {
        return maxGroups;
    }

    /**
     * The two grouped GEMMs of the laid-out groups over the workspace at the given device addresses:
     * {@code gu_g = [gate; up]_g x_g} (m = 2 ffn, n = rows, k = hidden) and {@code y_g = down_g h_g}
     * (m = hidden, n = rows, k = ffn), BF16 everywhere.
     */
    public void fill(DeviceFfn[] weightsOfEntry, int hidden, long xBf16, long gu, long h, long y,
                     GroupedGemm gateUp, GroupedGemm down) {
        gateUp.clear();
        down.clear();
        for (int g = 0; g < groups; g++) {
            DeviceFfn w = weightsOfEntry[entry[g]];
            if (w.hidden() != hidden || w.ffn() != ffn[g]) {
                throw new IllegalArgumentException("entry " + entry[g] + ": weights [" + w.hidden() + ", " + w.ffn()
                        + "] do not match hidden " + hidden + ", ffn " + ffn[g]);
            }
            int f = ffn[g];
            int r = rows[g];
            gateUp.add(Cublas.OP_T, Cublas.OP_N, 2 * f, r, hidden, w.gateUp(), hidden, xBf16 + rowOffset[g] * hidden * 2, hidden,
                    gu + guOffset[g] * 2, 2 * f);
            down.add(Cublas.OP_T, Cublas.OP_N, hidden, r, f, w.down(), f, h + hOffset[g] * 2, f, y + rowOffset[g] * hidden * 2, hidden);
        }
    }

    private int check(int g) {
        if (g < 0 || g >= groups) {
            throw new IndexOutOfBoundsException("group " + g + " of " + groups);
        }
        return g;
    }
}
