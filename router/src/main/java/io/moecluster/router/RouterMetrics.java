package io.moecluster.router;

import io.moecluster.core.forward.MoeRouter;
import io.moecluster.router.placement.ExpertReplica;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;

/**
 * The MoE router's metrics, as observable instruments over the counters it keeps anyway:
 * tokens routed per expert, MoE requests by outcome, malformed data-plane messages dropped and
 * back-pressure events. Nothing is recorded on the data path.
 */
public final class RouterMetrics {
    public static final AttributeKey<Long> EXPERT = AttributeKey.longKey("expert");
    public static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("outcome");
    private static final Attributes OK = Attributes.of(OUTCOME, "ok");
    private static final Attributes FAILED = Attributes.of(OUTCOME, "failed");

    private RouterMetrics() {
    }

    /** @param service the standalone router's data-plane loop, or null when the router is embedded */
    public static void register(Meter meter, MoeRouter router, AeronExpertDispatcher dispatcher, MoeService service) {
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
                .buildWithCallback(m -> m.record(dispatcher.malformedReplies()
                        + (service == null ? 0 : service.malformedDropped())));
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
        if (service != null) {
            meter.counterBuilder("moe.router.moe_requests")
                    .setDescription("Whole-layer MoE requests from attention replicas, by outcome")
                    .buildWithCallback(m -> {
                        m.record(service.requestsServed(), OK);
                        m.record(service.requestsFailed(), FAILED);
                    });
        }
    }
}
