package io.moecluster.expert;

import io.moecluster.telemetry.ServiceMetrics;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import java.util.BitSet;

/** An expert service's metrics: tokens served per hosted expert, batches, errors answered, malformed messages dropped. */
final class ExpertMetrics {
    private ExpertMetrics() {
    }

    static void register(Meter meter, ExpertWorker worker) {
        BitSet hosted = worker.experts();
        meter.counterBuilder("moe.expert.tokens_served")
                .setDescription("Tokens this service ran through each hosted expert, all layers")
                .buildWithCallback(m -> {
                    for (int e = hosted.nextSetBit(0); e >= 0; e = hosted.nextSetBit(e + 1)) {
                        m.record(worker.tokensServed(e), Attributes.of(ServiceMetrics.EXPERT, (long) e));
                    }
                });
        meter.counterBuilder("moe.expert.batches").setDescription("Token batches served")
                .buildWithCallback(m -> m.record(worker.batchesServed()));
        meter.counterBuilder("moe.expert.errors").setDescription("Batches answered with an error")
                .buildWithCallback(m -> m.record(worker.errorsAnswered()));
        meter.counterBuilder("moe.dataplane.malformed_dropped").setDescription("Malformed data-plane messages counted and dropped")
                .buildWithCallback(m -> m.record(worker.malformedDropped()));
    }
}
