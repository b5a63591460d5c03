package io.moecluster.core.kernels;

import java.lang.foreign.MemorySegment;

/**
 * The companion of a block-quantized weight: one f32 multiplier per {@code blockRows x blockCols}
 * block, row-major, {@code [ceil(rows / blockRows), ceil(cols / blockCols)]} (DeepSeek-V3's
 * {@code weight_scale_inv} with {@code quantization_config.weight_block_size}).
 */
public record BlockScales(MemorySegment scales, int blockRows, int blockCols) {
    /**
     * How {@link WeightMatrix#of} fetches the scales of a block-quantized tensor: the loader looks up
     * the companion tensor in the checkpoint and the block size in the config.
     */
    @FunctionalInterface
    public interface Source {
        /** The scales of the {@code [rows, cols]} weight {@code name}; fails naming what is missing. */
        BlockScales scalesOf(String name, int rows, int cols);

        /** For callers that hold no block-quantized weights: asking is an error naming the tensor. */
        Source NONE = (name, rows, cols) -> {
            throw new IllegalArgumentException(name + ": a block-quantized weight needs its block scales"
                    + " (the weight_scale_inv tensor and quantization_config.weight_block_size)");
        };
    }
}
