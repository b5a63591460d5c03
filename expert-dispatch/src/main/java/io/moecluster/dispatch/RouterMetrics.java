package io.moecluster.dispatch;

import io.moecluster.core.moe.MoeBlock;
import io.moecluster.dispatch.placement.ExpertReplica;
import io.moecluster.telemetry.ServiceMetrics;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import java.util.function.LongSupplier;

/**
 * The MoE router's metrics, as observable instruments over the counters it keeps anyway:
 * tokens routed per expert, MoE requests by outcome, malformed data-plane messages dropped and
 * back-pressure events. Nothing is recorded on the data path.
 */
public final class RouterMetrics {
    private static final AttributeKey<Long> EXPERT = ServiceMetrics.EXPERT;

    private RouterMetrics() {
    }

    /**
     * @param otherMalformed malformed messages the caller's own data-plane loop dropped (the
     *     router-service's MoE requests), counted in the same series as the expert replies'
     */
    public static void register(Meter meter, MoeBlock router, AeronExpertDispatcher dispatcher,
                                LongSupplier otherMalformed) {
        Attributes[] experts = new Attributes[router.expertSlots()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = Attributes.of(EXPERT, (long) e);
        }
        meter.counterBuilder("moe.router.tokens_routed")
                .setDescription("Tokens routed to each expert since start, all layers summed (the shared expert is num_experts)")
                .buildWithCallback(m -> {
                    for (int e = 0; e < experts.length; e++) {
                        m.record(router.tokensRouted(e), experts[e]);
                    }
                });
        meter.counterBuilder("moe.dataplane.backpressure_events")
                .setDescription("Offers to expert services that met Aeron back-pressure")
                .buildWithCallback(m -> m.record(dispatcher.backPressureEvents()));
        meter.counterBuilder("moe.dataplane.malformed_dropped")
                .setDescription("Malformed data-plane messages counted and dropped")
                .buildWithCallback(m -> m.record(dispatcher.malformedReplies() + otherMalformed.getAsLong()));
        meter.counterBuilder("moe.router.redispatches")
                .setDescription("Expert batches sent again to another replica after a replica failed or was too slow")
                .buildWithCallback(m -> m.record(dispatcher.redispatches()));
        AttributeKey<String> replicaKey = AttributeKey.stringKey("replica");
        meter.counterBuilder("moe.router.replica_tokens_routed")
                .setDescription("Tokens routed to each expert of each replica (expert service) since it joined")
                .buildWithCallback(m -> {
                    for (ExpertReplica r : dispatcher.placement().replicas()) {
                        for (int e : r.service().experts()) {
                            m.record(r.tokensRouted(e), Attributes.of(replicaKey, r.id(), EXPERT, (long) e));
                        }
                    }
                });
        meter.gaugeBuilder("moe.router.replica_outstanding_tokens").ofLongs()
                .setDescription("Tokens sent to each replica and not yet answered")
                .buildWithCallback(m -> {
                    for (ExpertReplica r : dispatcher.placement().replicas()) {
                        m.record(r.outstandingTokens(), Attributes.of(replicaKey, r.id()));
                    }
                });
    }
}
