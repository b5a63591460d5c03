package io.moecluster.core.model;

import io.moecluster.core.safetensors.DType;

/**
 * {@code quantization_config} of a block-quantized checkpoint: which type the quantized weights
 * have and the block each F32 multiplier of their {@code <name>_scale_inv} companion covers.
 *
 * <ul>
 *   <li>FP8, as DeepSeek-V3 ships it ({@code quant_method: fp8}, {@code fmt: e4m3},
 *       {@code activation_scheme: dynamic}, {@code weight_block_size: [128, 128]}): F8_E4M3 weights.
 *   <li>int8, this engine's Q8_0 ({@code quant_method: int8}, {@code fmt: q8_0},
 *       {@code weight_block_size: [1, 32]}): I8 weights in symmetric blocks of 32 along a row,
 *       written by {@code moe model quantize --format int8} ({@link CheckpointQuantizer}).
 * </ul>
 *
 * Activations stay f32 in both (the reference semantics of the dequantised weights).
 */
public record BlockQuantization(int blockRows, int blockCols, DType weights) {
    /** {@code quant_method} and {@code fmt} of the int8 format. */
    public static final String INT8_METHOD = "int8";
    public static final String INT8_FMT = "q8_0";
    /** The int8 format: blocks of one row by 32 columns. */
    public static final BlockQuantization INT8 = new BlockQuantization(1, 32, DType.I8);

    public BlockQuantization {
        if (blockRows < 1 || blockCols < 1) {
            throw new IllegalArgumentException("block size [" + blockRows + ", " + blockCols + "] must be positive");
        }
        if (weights != DType.F8_E4M3 && weights != DType.I8) {
            throw new IllegalArgumentException("block quantization of " + weights + " weights (expected F8_E4M3 or I8)");
        }
    }

    /** FP8 e4m3 blocks of {@code blockRows x blockCols}. */
    public BlockQuantization(int blockRows, int blockCols) {
        this(blockRows, blockCols, DType.F8_E4M3);
    }

    public boolean isInt8() {
        return weights == DType.I8;
    }
}
