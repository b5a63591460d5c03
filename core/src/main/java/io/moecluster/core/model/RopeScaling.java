package io.moecluster.core.model;

/**
 * YaRN rope scaling ({@code rope_scaling: {type: yarn, ...}}), with the formulas of Hugging Face
 * transformers ({@code _compute_yarn_parameters}), for every architecture that declares it.
 *
 * <p>Two factors come out of it. {@link #attentionFactor} multiplies cos and sin (so q·k by its
 * square) in every architecture. DeepSeek-V3 also multiplies its softmax scale by
 * {@code mscale(factor, mscale_all_dim)^2} ({@link #softmaxScaleFactor}); with DeepSeek's
 * {@code mscale == mscale_all_dim} the cos/sin factor is then 1 and the whole effect is on the
 * softmax. Mixtral and Qwen2-MoE, as in transformers, use only the cos/sin factor.
 *
 * @param factor {@code factor}, as written in the config
 * @param originalMaxPositionEmbeddings {@code original_max_position_embeddings}, 0 when absent
 * @param betaFast {@code beta_fast} (default 32)
 * @param betaSlow {@code beta_slow} (default 1)
 * @param mscale {@code mscale}, 0 when absent
 * @param mscaleAllDim {@code mscale_all_dim}, 0 when absent
 * @param attentionFactorOverride {@code attention_factor}, NaN when absent
 * @param truncate {@code truncate} (default true): round the correction range to whole dimensions
 */
public record RopeScaling(double factor, int originalMaxPositionEmbeddings, double betaFast, double betaSlow,
                          double mscale, double mscaleAllDim, double attentionFactorOverride, boolean truncate) {

    /** YaRN with only a factor, every other key at its default. */
    public static RopeScaling yarn(double factor) {
        return new RopeScaling(factor, 0, 32, 1, 0, 0, Double.NaN, true);
    }

    /** {@code yarn_get_mscale}: {@code 0.1 * mscale * ln(scale) + 1}, or 1 when {@code scale <= 1}. */
    public static double mscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    /**
     * The factor the frequencies are interpolated by: {@code max_position_embeddings /
     * original_max_position_embeddings} when the latter is given (transformers' rule, made for
     * DeepSeek-V3, whose configs carry both), else {@code factor}.
     */
    public double effectiveFactor(int maxPositionEmbeddings) {
        return originalMaxPositionEmbeddings > 0 ? (double) maxPositionEmbeddings / originalMaxPositionEmbeddings : factor;
    }

    /** The context length the model was trained on, from which the correction range is found. */
    public int originalContext(int maxPositionEmbeddings) {
        return originalMaxPositionEmbeddings > 0 ? originalMaxPositionEmbeddings : maxPositionEmbeddings;
    }

    /**
     * The multiplier of cos and sin: {@code attention_factor} if given, else
     * {@code mscale(f, mscale) / mscale(f, mscale_all_dim)} when both are set (non-zero), else
     * {@code mscale(f, 1)}, with f the {@link #effectiveFactor}.
     */
    public double attentionFactor(int maxPositionEmbeddings) {
        if (!Double.isNaN(attentionFactorOverride)) {
            return attentionFactorOverride;
        }
        double f = effectiveFactor(maxPositionEmbeddings);
        if (mscale != 0 && mscaleAllDim != 0) {
            return mscale(f, mscale) / mscale(f, mscaleAllDim);
        }
        return mscale(f, 1.0);
    }

    /**
     * DeepSeek-V3's multiplier of the softmax scale: {@code mscale(factor, mscale_all_dim)^2} when
     * {@code mscale_all_dim} is set, else 1 ({@code factor} as written, as transformers reads it there).
     */
    public double softmaxScaleFactor() {
        if (mscaleAllDim == 0) {
            return 1.0;
        }
        double m = mscale(factor, mscaleAllDim);
        return m * m;
    }

    /**
     * The {@code dim / 2} inverse frequencies: each blends the interpolated {@code 1 / (f * base^(2i/dim))}
     * and the extrapolated {@code 1 / base^(2i/dim)} by a linear ramp between the dimensions that
     * turn {@code beta_fast} and {@code beta_slow} times over the original context. In double.
     */
    public double[] inverseFrequencies(int dim, double base, int maxPositionEmbeddings) {
        double f = effectiveFactor(maxPositionEmbeddings);
        int context = originalContext(maxPositionEmbeddings);
        double low = correctionDim(betaFast, dim, base, context);
        double high = correctionDim(betaSlow, dim, base, context);
        if (truncate) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) {
            high += 0.001; // as transformers: no division by zero
        }
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            double posFreq = Math.pow(base, (2.0 * i) / dim);
            double ramp = Math.min(1.0, Math.max(0.0, (i - low) / (high - low)));
            double extrapolation = 1.0 - ramp;
            inv[i] = (1.0 / (f * posFreq)) * (1.0 - extrapolation) + (1.0 / posFreq) * extrapolation;
        }
        return inv;
    }

    private static double correctionDim(double rotations, int dim, double base, int context) {
        return (dim * Math.log(context / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
    }
}
