package io.moecluster.core.backend.cpu;

import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.FfnWeights;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One SwiGLU FFN (a routed expert, the shared expert or a dense MLP) over a block of rows on the
 * CPU: {@code out = s * down(silu(gate(x)) * up(x))}. Gate, up and the activation run in one
 * parallel pass over the FFN's rows, so each weight row is read once per step while its output is
 * hot; the down projection follows, then each row's scale.
 */
final class CpuFfnKernel implements FfnKernel, RangeTask {
    private final WorkerPool pool;
    private final MatMul down;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment gateBuf;
    private final MemorySegment upBuf;
    private final int maxRows;
    private final int maxFfn;

    private FfnWeights w;
    private MemorySegment x;
    private int xRow;
    private int rows;

    CpuFfnKernel(int maxRows, int maxFfn, WorkerPool pool) {
        this.pool = pool;
        this.down = new MatMul(pool);
        this.maxRows = maxRows;
        this.maxFfn = maxFfn;
        this.gateBuf = arena.allocate((long) maxRows * maxFfn * 4, 64);
        this.upBuf = arena.allocate((long) maxRows * maxFfn * 4, 64);
    }

    @Override
    public int maxRows() {
        return maxRows;
    }

    @Override
    public void run(FfnWeights weights, MemorySegment x, int xRow, int rows, MemorySegment scales, long scaleIndex,
                    MemorySegment out, int outRow) {
        if (rows > maxRows) {
            throw new IllegalArgumentException(rows + " rows exceed this FFN runner's " + maxRows);
        }
        if (weights.ffn() > maxFfn) {
            throw new IllegalArgumentException("FFN width " + weights.ffn() + " exceeds this FFN runner's " + maxFfn);
        }
        this.w = weights;
        this.x = x;
        this.xRow = xRow;
        this.rows = rows;
        pool.parallelFor(weights.ffn(), 16, this);
        down.apply(weights.down(), gateBuf, 0, out, outRow, rows);
        this.w = null;
        this.x = null;
        if (scales != null) {
            int hidden = weights.hidden();
            for (int i = 0; i < rows; i++) {
                Kernels.scale(out, (long) (outRow + i) * hidden, hidden, Kernels.get(scales, scaleIndex + i));
            }
        }
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

    @Override
    public void close() {
        arena.close();
    }
}
