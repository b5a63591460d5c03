package io.moecluster.core.model;

/**
 * {@code quantization_config} of an FP8 checkpoint as DeepSeek-V3 ships it
 * ({@code quant_method: fp8}, {@code fmt: e4m3}, {@code activation_scheme: dynamic}): F8_E4M3
 * weights, each with an F32 {@code weight_scale_inv} of one multiplier per
 * {@code weight_block_size} block. Activations stay f32 here (the reference semantics of the
 * dequantised weights).
 */
public record BlockQuantization(int blockRows, int blockCols) {
}
