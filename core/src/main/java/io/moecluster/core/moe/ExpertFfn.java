package io.moecluster.core.moe;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.MatMul;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Runs one SwiGLU FFN (a routed expert, the shared expert or a dense MLP) over a block of rows:
 * {@code out = down(silu(gate(x)) * up(x))}. Gate, up and the activation run in one parallel
 * pass over the FFN's rows, so each weight row is read once per step while its output is hot.
 */
public final class ExpertFfn implements RangeTask {
    private final WorkerPool pool;
    private final MatMul down;
    private final MemorySegment gateBuf;
    private final MemorySegment upBuf;
    private final int maxRows;

    private FfnWeights w;
    private MemorySegment x;
    private int xRow;
    private int rows;

    public ExpertFfn(int maxRows, int maxFfn, WorkerPool pool, Arena arena) {
        this.pool = pool;
        this.down = new MatMul(pool);
        this.maxRows = maxRows;
        this.gateBuf = arena.allocate((long) maxRows * maxFfn * 4, 64);
        this.upBuf = arena.allocate((long) maxRows * maxFfn * 4, 64);
    }

    /** Rows {@code [xRow, xRow + rows)} of x in, rows {@code [outRow, outRow + rows)} of out written. */
    public void run(FfnWeights weights, MemorySegment x, int xRow, int rows, MemorySegment out, int outRow) {
        if (rows > maxRows) {
            throw new IllegalArgumentException(rows + " rows exceed this FFN runner's " + maxRows);
        }
        this.w = weights;
        this.x = x;
        this.xRow = xRow;
        this.rows = rows;
        pool.parallelFor(weights.ffn(), 16, this);
        down.apply(weights.down(), gateBuf, 0, out, outRow, rows);
        this.w = null;
        this.x = null;
    }

    @Override
    public void run(int worker, int start, int end) {
        MatMul.rows(w.gate(), x, xRow, gateBuf, 0, rows, start, end);
        MatMul.rows(w.up(), x, xRow, upBuf, 0, rows, start, end);
        int ffn = w.ffn();
        for (int b = 0; b < rows; b++) {
            long base = (long) b * ffn;
            Kernels.siluMul(gateBuf, base + start, upBuf, base + start, end - start);
        }
    }
}
