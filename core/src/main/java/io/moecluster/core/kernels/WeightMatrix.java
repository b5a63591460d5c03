package io.moecluster.core.kernels;

import io.moecluster.core.safetensors.DType;
import java.lang.foreign.MemorySegment;

/**
 * A row-major {@code [rows, cols]} weight, as Hugging Face stores a Linear layer ({@code [out, in]}),
 * in F32 or BF16, usually a read-only mapping of the checkpoint. Rows are contiguous, so a matmul
 * streams each output's weights once per token block.
 */
public record WeightMatrix(String name, MemorySegment data, DType dtype, int rows, int cols) {
    public WeightMatrix {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException(name + ": kernels take F32 or BF16 weights, got " + dtype
                    + " (F16 checkpoints are widened to F32 when loaded)");
        }
        if (data.byteSize() != (long) rows * cols * dtype.bytes()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for " + dtype
                    + " [" + rows + ", " + cols + "]");
        }
    }

    public long byteSize() {
        return data.byteSize();
    }

    /** Widens row {@code row} to f32 into {@code out} at float index {@code outIndex}. */
    public void copyRowTo(int row, MemorySegment out, long outIndex) {
        long base = (long) row * cols;
        if (dtype == DType.F32) {
            MemorySegment.copy(data, base * 4, out, outIndex * 4, (long) cols * 4);
        } else {
            for (int c = 0; c < cols; c++) {
                out.setAtIndex(Kernels.F32, outIndex + c, Bf16.toFloat(data.get(Kernels.BF16_RAW, (base + c) * 2)));
            }
        }
    }
}
