package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * Two f32 weight rows against four tokens at 512 bits (and against the one to three left over):
 * the tiles BF16 and int8 run on rows they have decoded once into
 * {@link KernelScratch#decodedRows}. Each activation load feeds two FMAs and each weight load
 * four, so the loads (one 512-bit load per FMA on this class of CPU) stop bounding a batch.
 * Sixteen accumulators, two per (row, token), vectors alternating between them exactly as the
 * formats' {@code dot1} alternates, so a token's result is the same bits in this tile as alone.
 * Needs {@code cols} a multiple of {@code 2 * LANES} (no tail) and 32 vector registers (AVX-512;
 * at 256 bits the accumulators would spill); each format says from how many tokens it pays
 * ({@link #fits}).
 */
final class TwoRowF32Kernel {
    private TwoRowF32Kernel() {
    }

    /**
     * Whether a batch of {@code batch} tokens over rows of {@code cols} weights goes through this
     * tile here: at least {@code minTokens} (the format's break-even, where decoding the row pair
     * once costs less than its one-row kernels widening every weight per pass), 16 lanes, and no
     * tail.
     */
    static boolean fits(int batch, int cols, int minTokens) {
        return batch >= minTokens && Kernels.LANES == 16 && !Kernels.SCALAR && cols % (2 * Kernels.LANES) == 0;
    }

    /**
     * Rows {@code r} and {@code r + 1} of {@code w} decoded into {@code decoded} (its
     * {@link WeightMatrix#copyRowTo}, the same f32 values its own kernels form) and applied to all
     * {@code batch} tokens of {@code x} from float index {@code xBase}, into {@code y} from
     * {@code yBase} ({@code [batch, w.rows()]}): blocks of four through {@link #apply}, then the
     * one to three left over through {@link #applyTwoTokens} and {@link #applyOneToken}, on the
     * decoded rows too (the format's own one-row kernels would widen every weight again, once per
     * row and pass).
     */
    static void applyRowPair(WeightMatrix w, int r, MemorySegment decoded, MemorySegment sums,
                             MemorySegment x, long xBase, int batch, MemorySegment y, long yBase) {
        final int cols = w.cols();
        final int outRows = w.rows();
        w.copyRowTo(r, decoded, 0);
        w.copyRowTo(r + 1, decoded, cols);
        int b = 0;
        for (; b + 4 <= batch; b += 4) {
            apply(decoded, 0, x, xBase + (long) b * cols, cols, sums, y, yBase + (long) b * outRows + r, outRows);
        }
        if (b + 2 <= batch) {
            applyTwoTokens(decoded, 0, x, xBase + (long) b * cols, cols, sums, y, yBase + (long) b * outRows + r, outRows);
            b += 2;
        }
        if (b < batch) {
            applyOneToken(decoded, 0, x, xBase + (long) b * cols, cols, sums, y, yBase + (long) b * outRows + r, outRows);
        }
    }

    /**
     * {@code y[yIndex + b * yStride + i] = w[wRow + i * cols, :] · x[xRow + b * cols, :]} for rows
     * {@code i < 2} and tokens {@code b < 4}.
     */
    static void apply(MemorySegment w, long wRow, MemorySegment x, long xRow, int cols, MemorySegment sums,
                      MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final long vRow = wRow + cols;
        final long x0 = xRow;
        final long x1 = xRow + cols;
        final long x2 = xRow + 2L * cols;
        final long x3 = xRow + 3L * cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        FloatVector a20 = FloatVector.zero(Kernels.F);
        FloatVector a21 = FloatVector.zero(Kernels.F);
        FloatVector a30 = FloatVector.zero(Kernels.F);
        FloatVector a31 = FloatVector.zero(Kernels.F);
        FloatVector b00 = FloatVector.zero(Kernels.F);
        FloatVector b01 = FloatVector.zero(Kernels.F);
        FloatVector b10 = FloatVector.zero(Kernels.F);
        FloatVector b11 = FloatVector.zero(Kernels.F);
        FloatVector b20 = FloatVector.zero(Kernels.F);
        FloatVector b21 = FloatVector.zero(Kernels.F);
        FloatVector b30 = FloatVector.zero(Kernels.F);
        FloatVector b31 = FloatVector.zero(Kernels.F);
        for (int k = 0; k <= cols - 2 * lanes; k += 2 * lanes) {
            FloatVector w0 = Kernels.loadF32(w, wRow + k);
            FloatVector w1 = Kernels.loadF32(w, wRow + k + lanes);
            FloatVector v0 = Kernels.loadF32(w, vRow + k);
            FloatVector v1 = Kernels.loadF32(w, vRow + k + lanes);
            FloatVector xa = Kernels.loadF32(x, x0 + k);
            FloatVector xb = Kernels.loadF32(x, x0 + k + lanes);
            a00 = w0.fma(xa, a00);
            a01 = w1.fma(xb, a01);
            b00 = v0.fma(xa, b00);
            b01 = v1.fma(xb, b01);
            xa = Kernels.loadF32(x, x1 + k);
            xb = Kernels.loadF32(x, x1 + k + lanes);
            a10 = w0.fma(xa, a10);
            a11 = w1.fma(xb, a11);
            b10 = v0.fma(xa, b10);
            b11 = v1.fma(xb, b11);
            xa = Kernels.loadF32(x, x2 + k);
            xb = Kernels.loadF32(x, x2 + k + lanes);
            a20 = w0.fma(xa, a20);
            a21 = w1.fma(xb, a21);
            b20 = v0.fma(xa, b20);
            b21 = v1.fma(xb, b21);
            xa = Kernels.loadF32(x, x3 + k);
            xb = Kernels.loadF32(x, x3 + k + lanes);
            a30 = w0.fma(xa, a30);
            a31 = w1.fma(xb, a31);
            b30 = v0.fma(xa, b30);
            b31 = v1.fma(xb, b31);
        }
        final int v = lanes * 4;
        a00.add(a01).intoMemorySegment(sums, 0, Kernels.LE);
        a10.add(a11).intoMemorySegment(sums, v, Kernels.LE);
        a20.add(a21).intoMemorySegment(sums, 2L * v, Kernels.LE);
        a30.add(a31).intoMemorySegment(sums, 3L * v, Kernels.LE);
        b00.add(b01).intoMemorySegment(sums, 4L * v, Kernels.LE);
        b10.add(b11).intoMemorySegment(sums, 5L * v, Kernels.LE);
        b20.add(b21).intoMemorySegment(sums, 6L * v, Kernels.LE);
        b30.add(b31).intoMemorySegment(sums, 7L * v, Kernels.LE);
        store(sums, 4, y, yIndex, yStride);
    }

    /**
     * As {@link #apply} for two tokens ({@code b < 2}): eight accumulators, the same order.
     */
    static void applyTwoTokens(MemorySegment w, long wRow, MemorySegment x, long xRow, int cols, MemorySegment sums,
                               MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final long vRow = wRow + cols;
        final long x0 = xRow;
        final long x1 = xRow + cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector a10 = FloatVector.zero(Kernels.F);
        FloatVector a11 = FloatVector.zero(Kernels.F);
        FloatVector b00 = FloatVector.zero(Kernels.F);
        FloatVector b01 = FloatVector.zero(Kernels.F);
        FloatVector b10 = FloatVector.zero(Kernels.F);
        FloatVector b11 = FloatVector.zero(Kernels.F);
        for (int k = 0; k <= cols - 2 * lanes; k += 2 * lanes) {
            FloatVector w0 = Kernels.loadF32(w, wRow + k);
            FloatVector w1 = Kernels.loadF32(w, wRow + k + lanes);
            FloatVector v0 = Kernels.loadF32(w, vRow + k);
            FloatVector v1 = Kernels.loadF32(w, vRow + k + lanes);
            FloatVector xa = Kernels.loadF32(x, x0 + k);
            FloatVector xb = Kernels.loadF32(x, x0 + k + lanes);
            a00 = w0.fma(xa, a00);
            a01 = w1.fma(xb, a01);
            b00 = v0.fma(xa, b00);
            b01 = v1.fma(xb, b01);
            xa = Kernels.loadF32(x, x1 + k);
            xb = Kernels.loadF32(x, x1 + k + lanes);
            a10 = w0.fma(xa, a10);
            a11 = w1.fma(xb, a11);
            b10 = v0.fma(xa, b10);
            b11 = v1.fma(xb, b11);
        }
        final int v = lanes * 4;
        a00.add(a01).intoMemorySegment(sums, 0, Kernels.LE);
        a10.add(a11).intoMemorySegment(sums, v, Kernels.LE);
        b00.add(b01).intoMemorySegment(sums, 2L * v, Kernels.LE);
        b10.add(b11).intoMemorySegment(sums, 3L * v, Kernels.LE);
        store(sums, 2, y, yIndex, yStride);
    }

    /**
     * As {@link #apply} for one token: four accumulators, the same order.
     */
    static void applyOneToken(MemorySegment w, long wRow, MemorySegment x, long xRow, int cols, MemorySegment sums,
                              MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        final long vRow = wRow + cols;
        FloatVector a00 = FloatVector.zero(Kernels.F);
        FloatVector a01 = FloatVector.zero(Kernels.F);
        FloatVector b00 = FloatVector.zero(Kernels.F);
        FloatVector b01 = FloatVector.zero(Kernels.F);
        for (int k = 0; k <= cols - 2 * lanes; k += 2 * lanes) {
            FloatVector xa = Kernels.loadF32(x, xRow + k);
            FloatVector xb = Kernels.loadF32(x, xRow + k + lanes);
            a00 = Kernels.loadF32(w, wRow + k).fma(xa, a00);
            a01 = Kernels.loadF32(w, wRow + k + lanes).fma(xb, a01);
            b00 = Kernels.loadF32(w, vRow + k).fma(xa, b00);
            b01 = Kernels.loadF32(w, vRow + k + lanes).fma(xb, b01);
        }
        final int v = lanes * 4;
        a00.add(a01).intoMemorySegment(sums, 0, Kernels.LE);
        b00.add(b01).intoMemorySegment(sums, v, Kernels.LE);
        store(sums, 1, y, yIndex, yStride);
    }

    /**
     * The {@code 2 * tokens} vectors a tile left in {@code sums} (the tokens of the first row, then
     * of the second) reduced by {@link Kernels#sumLanes} and stored: a method of its own, so that
     * the reductions are not part of the loop's compilation budget.
     */
    static void store(MemorySegment sums, int tokens, MemorySegment y, long yIndex, int yStride) {
        final int lanes = Kernels.LANES;
        for (int b = 0; b < tokens; b++) {
            long out = yIndex + (long) b * yStride;
            y.setAtIndex(Kernels.F32, out, Kernels.sumLanes(Kernels.loadF32(sums, (long) b * lanes)));
            y.setAtIndex(Kernels.F32, out + 1, Kernels.sumLanes(Kernels.loadF32(sums, (long) (tokens + b) * lanes)));
        }
    }
}
