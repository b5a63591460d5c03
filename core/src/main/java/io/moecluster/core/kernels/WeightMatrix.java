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
 *       load ({@code dot4}), then two ({@code dot2}), the rest one by one ({@code dot1}); BF16
 *       and int8 take rows in pairs through {@link TwoRowF32Kernel} from eight (BF16) or five
 *       (int8) tokens on. Each
 *       token keeps its own two accumulators over {@code [0, cols)} in the same order in all of
 *       them, reduced by
 *       {@link Kernels#sumLanes} and finished by a scalar tail, so a token's result never depends on
 *       its batch-mates, the thread split or the JIT tier. Under {@link Kernels#SCALAR} the same
 *       method runs plain Java loops summing in index order;
 *   <li>{@link #copyRowTo}: one row widened to f32 (embedding lookups, and 1-D tensors such as norms
 *       read as a {@code [1, n]} matrix).
 * </ul>
 *
 * <p><b>Block-quantized formats</b> fit the same contract: their layout is a row of blocks and the
 * row kernels decode a block per step. {@link Fp8Matrix} is the first: FP8 e4m3 as DeepSeek-V3
 * ships it, one byte per weight plus a second tensor, {@code <name>_scale_inv}, of one f32
 * multiplier per block ({@link BlockScales}); its kernels decode a vector of bytes and multiply by
 * the block's scale in registers, and {@link #byteSize} counts both tensors. {@link #of} fetches the
 * companion through a {@link BlockScales.Source}, which {@code WeightLoader} implements over the
 * checkpoint and the config. {@link Int8Matrix} is the second: int8 weights in blocks of 32 along a
 * row, each with an f32 multiplier in the same kind of companion tensor (llama.cpp's Q8_0).
 */
public abstract sealed class WeightMatrix permits F32Matrix, Bf16Matrix, F16Matrix, Fp8Matrix, Int8Matrix {
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
     * stored formats to kernels. {@code data} is used in place (not copied). A block-quantized
     * type fails here, naming the tensor: it needs {@link #of(String, MemorySegment, DType, int, int, BlockScales.Source)}.
     */
    public static WeightMatrix of(String name, MemorySegment data, DType dtype, int rows, int cols) {
        return of(name, data, dtype, rows, cols, BlockScales.Source.NONE);
    }

    /**
     * As {@link #of(String, MemorySegment, DType, int, int)}, with {@code scales} asked for the
     * companion tensor of a block-quantized type ({@link DType#F8_E4M3}, {@link DType#I8}); other types never ask.
     */
    public static WeightMatrix of(String name, MemorySegment data, DType dtype, int rows, int cols,
                                  BlockScales.Source scales) {
        return switch (dtype) {
            case F32 -> new F32Matrix(name, data, rows, cols);
            case BF16 -> new Bf16Matrix(name, data, rows, cols);
            case F16 -> new F16Matrix(name, data, rows, cols);
            case F8_E4M3 -> {
                BlockScales s = scales.scalesOf(name, rows, cols);
                yield new Fp8Matrix(name, data, rows, cols, s.scales(), s.blockRows(), s.blockCols());
            }
            case I8 -> {
                BlockScales s = scales.scalesOf(name, rows, cols);
                if (s.blockRows() != 1 || s.blockCols() != Int8Matrix.BLOCK) {
                    throw new IllegalArgumentException(name + ": I8 weights come in blocks of 1x" + Int8Matrix.BLOCK
                            + ", not " + s.blockRows() + "x" + s.blockCols());
                }
                yield new Int8Matrix(name, data, rows, cols, s.scales());
            }
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

    /** The format's name, as safetensors spells its dtype where it has one: "F32", "BF16", "F16", "F8_E4M3", "I8". */
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

    /**
     * The transposed product over a run of rows: {@code y[yIndex + c] = Σ_i a[aIndex + i] * W[rowStart + i, c]}
     * for every column {@code c}, {@code i < count}, rows added in order (multi-head latent
     * attention folds its key up-projection into the query this way). Each row is widened into
     * {@code scratch} ({@code cols} floats) by {@link #copyRowTo}, the first scaled into {@code y}
     * and the others added with {@link Kernels#axpy}, so every element is summed in one fixed
     * order. Serial; allocates nothing.
     */
    public final void combineRows(MemorySegment a, long aIndex, int rowStart, int count, MemorySegment y, long yIndex,
                                  MemorySegment scratch) {
        if (rowStart < 0 || count < 0 || rowStart + count > rows) {
            throw new IllegalArgumentException(name + ": rows [" + rowStart + ", " + (rowStart + count)
                    + ") outside [0, " + rows + ")");
        }
        if (count == 0) {
            for (int c = 0; c < cols; c++) {
                Kernels.set(y, yIndex + c, 0f);
            }
            return;
        }
        copyRowTo(rowStart, scratch, 0);
        Kernels.scaleInto(Kernels.get(a, aIndex), scratch, 0, y, yIndex, cols);
        for (int i = 1; i < count; i++) {
            copyRowTo(rowStart + i, scratch, 0);
            Kernels.axpy(Kernels.get(a, aIndex + i), scratch, 0, y, yIndex, cols);
        }
    }

    @Override
    public String toString() {
        return name + " " + format() + " [" + rows + ", " + cols + "]";
    }
}
