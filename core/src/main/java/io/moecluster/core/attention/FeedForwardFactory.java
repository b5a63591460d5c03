package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;

/**
 * Builds the feed-forward side an engine uses: every expert in process
 * ({@code io.moecluster.core.moe.LocalFeedForward}), an embedded MoE block that dispatches to
 * expert services, or the router-service over Aeron.
 */
@FunctionalInterface
public interface FeedForwardFactory {
    /**
     * @param backend where dense MLP layers (and in-process experts) compute
     * @param maxTokens the most tokens of one forward step
     */
    FeedForward create(ModelConfig config, WeightLoader loader, ComputeBackend backend, int maxTokens);
}
