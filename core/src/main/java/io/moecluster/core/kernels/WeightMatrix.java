package io.moecluster.core.kernels;

import io.moecluster.core.safetensors.DType;
import java.lang.foreign.MemorySegment;

/**
 * A row-major {@code [rows, cols]} weight, as Hugging Face stores a Linear layer ({@code [out, in]}),
 * usually a read-only mapping of the checkpoint. Rows are contiguous, so a matmul streams each
 * output's weights once per token block.
 *
 * <p><b>One variant per storage format</b>, each a final class that owns its byte layout and its
 * row kernels: {@link F32Matrix}, {@link Bf16Matrix}, {@link F16Matrix}. The weights stay in their
 * stored format (an F16 checkpoint is not widened to an F32 copy); a kernel widens each load to
 * f32 in registers. Callers ({@code MatMul}, the FFN kernel) call the variant and never look at
 * the format. {@link #of} is the one place that maps a checkpoint dtype to a variant.
 *
 * <p><b>What a variant implements</b>:
 * <ul>
 *   <li>its layout: its constructor passes the byte size of {@code [rows, cols]} in the format,
 *       which the shared constructor checks {@code data} against;
 *   <li>{@link #applyRows}: {@code y[b, r] = W[r, :] · x[b, :]} over a range of output rows, the
 *       whole row loop inside the final class so that its kernels are monomorphic and inline (one
 *       virtual call per range, none per row or per vector load, no allocation). The built-in
 *       variants share one shape: for each weight row, tokens in blocks of four sharing each weight
 *       load ({@code dot4}), the rest one by one ({@code dot1}); each token keeps its own two
 *       accumulators over {@code [0, cols)} in the same order in both, reduced by
 *       {@link Kernels#sumLanes} and finished by a scalar tail, so a token's result never depends on
 *       its batch-mates, the thread split or the JIT tier. Under {@link Kernels#SCALAR} the same
 *       method runs plain Java loops summing in index order;
 *   <li>{@link #copyRowTo}: one row widened to f32 (embedding lookups, and 1-D tensors such as norms
 *       read as a {@code [1, n]} matrix).
 * </ul>
 *
 * <p><b>Block-quantized formats</b> (the next ones) fit the same contract: their layout is a row of
 * blocks and the row kernels decode a block per step instead of a vector of elements. For example
 * Q8_0 (llama.cpp): blocks of 32 int8 weights with one f16 scale each; {@code dot1} accumulates,
 * per block, {@code scale * Σ q_i x_i} (int8 widened to f32 lanes, a block being a whole number of
 * vectors at 128-512 bits), {@code copyRowTo} writes {@code scale * q_i}; {@code cols} must be a
 * multiple of 32. FP8 e4m3 as DeepSeek-V3 ships it: one byte per weight plus a second tensor,
 * {@code <name>_scale_inv}, holding one f32 scale per 128x128 block; the variant takes both
 * segments, a row's dot multiplies each 128-column segment's partial sum by that block's scale
 * (row {@code r / 128}, column block {@code c / 128}), and {@link #byteSize} counts both. To add a
 * format: one new final class here plus its tests, its name in the {@code permits} clause, and its
 * case in {@link #of} (whose signature grows a way to fetch a companion tensor when FP8 arrives;
 * {@code WeightLoader} calls only {@link #of}).
 */
public abstract sealed class WeightMatrix permits F32Matrix, Bf16Matrix, F16Matrix {
    final String name;
    final MemorySegment data;
    final int rows;
    final int cols;

    /**
     * @param expectedBytes the bytes of {@code [rows, cols]} in the variant's layout
     */
    WeightMatrix(String name, MemorySegment data, int rows, int cols, long expectedBytes) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException(name + ": negative shape [" + rows + ", " + cols + "]");
        }
        if (data.byteSize() != expectedBytes) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for " + format()
                    + " [" + rows + ", " + cols + "], expected " + expectedBytes);
        }
        this.name = name;
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    /**
     * The variant for a checkpoint tensor of element type {@code dtype}: the one mapping from
     * stored formats to kernels. {@code data} is used in place (not copied).
     */
    public static WeightMatrix of(String name, MemorySegment data, DType dtype, int rows, int cols) {
        return switch (dtype) {
            case F32 -> new F32Matrix(name, data, rows, cols);
            case BF16 -> new Bf16Matrix(name, data, rows, cols);
            case F16 -> new F16Matrix(name, data, rows, cols);
        };
    }

    public final String name() {
        return name;
    }

    /** The stored bytes, in the variant's layout. */
    public final MemorySegment data() {
        return data;
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** The format's name, as safetensors spells its dtype where it has one: "F32", "BF16", "F16". */
    public abstract String format();

    /** Bytes of weights a full pass reads (for a block format, scales included). */
    public long byteSize() {
        return data.byteSize();
    }

    /** Whether the weights are a mapping of the checkpoint file rather than memory of their own. */
    public boolean isMapped() {
        return data.isMapped();
    }

    /**
     * {@code y[yRow + b, r] = W[r, :] · x[xRow + b, :]} for tokens {@code b < batch} and output rows
     * {@code r} in {@code [rowStart, rowEnd)}: x is {@code [*, cols]} f32, y is {@code [*, rows]}
     * f32. Serial; callers split the rows over threads.
     */
    public abstract void applyRows(MemorySegment x, int xRow, MemorySegment y, int yRow, int batch,
                                   int rowStart, int rowEnd);

    /** Widens row {@code row} to f32 into {@code out} at float index {@code outIndex}. */
    public abstract void copyRowTo(int row, MemorySegment out, long outIndex);

    @Override
    public String toString() {
        return name + " " + format() + " [" + rows + ", " + cols + "]";
    }
}
