package io.moecluster.core.attention;


import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.WorkerPool;

/**
 * Builds the feed-forward side an engine uses: the experts in process ({@link #LOCAL}), or a
 * router that dispatches them to expert services.
 */
@FunctionalInterface
public interface FeedForwardFactory {
    FeedForward create(ModelConfig config, WeightLoader loader, WorkerPool pool, int maxTokens);
}
