package io.moecluster.core.model;

/**
 * DeepSeek-V3's expert choice ({@code scoring_func: sigmoid}, {@code topk_method: noaux_tc}):
 * sigmoid scores, the {@code e_score_correction_bias} added for choosing only, the experts in
 * {@code n_group} groups each scored by the sum of its two best, the best {@code topk_group}
 * groups kept, then the top-k of their experts; weights from the unbiased scores, renormalised
 * when {@code norm_topk_prob}, times {@code routed_scaling_factor}.
 */
public record GroupLimitedRouting(int nGroup, int topkGroup, double routedScalingFactor) {
}
