package io.moecluster.router;

import io.moecluster.proto.v1.FinishReason;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.MeterProvider;
import java.util.List;

/**
 * The public API's request metrics: requests by outcome, completion tokens (their rate is the
 * cluster's tokens/s), time to first token, the gap between tokens, and requests active.
 */
public final class RequestMetrics {
    private static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("outcome");
    private static final Attributes STOP = Attributes.of(OUTCOME, "stop");
    private static final Attributes LENGTH = Attributes.of(OUTCOME, "length");
    private static final Attributes STOP_SEQUENCE = Attributes.of(OUTCOME, "stop_sequence");
    private static final Attributes FAILED = Attributes.of(OUTCOME, "failed");
    /** Latency buckets in milliseconds, from sub-millisecond decode steps to multi-second prefills. */
    private static final List<Double> MS_BUCKETS = List.of(1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
            1000.0, 2000.0, 5000.0, 10000.0);

    private final LongCounter requests;
    private final LongCounter completionTokens;
    private final DoubleHistogram timeToFirstToken;
    private final DoubleHistogram interTokenLatency;

    public RequestMetrics(Meter meter, AdmissionControl admission) {
        requests = meter.counterBuilder("moe.requests").setDescription("Generate requests finished, by outcome").build();
        completionTokens = meter.counterBuilder("moe.completion_tokens")
                .setDescription("Tokens generated for clients; its rate is the cluster's tokens/s").build();
        timeToFirstToken = meter.histogramBuilder("moe.time_to_first_token").setUnit("ms")
                .setDescription("From request to first generated token").setExplicitBucketBoundariesAdvice(MS_BUCKETS).build();
        interTokenLatency = meter.histogramBuilder("moe.inter_token_latency").setUnit("ms")
                .setDescription("Between consecutive tokens of one request").setExplicitBucketBoundariesAdvice(MS_BUCKETS).build();
        meter.gaugeBuilder("moe.active_requests").ofLongs().setDescription("Requests admitted and not finished")
                .buildWithCallback(m -> m.record(admission.active()));
    }

    /** Instruments that record nothing (metrics off). */
    public static RequestMetrics noop(AdmissionControl admission) {
        return new RequestMetrics(MeterProvider.noop().get("noop"), admission);
    }

    void firstToken(double millis) {
        timeToFirstToken.record(millis);
    }

    void tokenGap(double millis) {
        interTokenLatency.record(millis);
    }

    void finished(FinishReason reason, int tokens) {
        completionTokens.add(tokens);
        requests.add(1, switch (reason) {
            case FINISH_REASON_LENGTH -> LENGTH;
            case FINISH_REASON_STOP_SEQUENCE -> STOP_SEQUENCE;
            default -> STOP;
        });
    }

    void failed(int tokens) {
        completionTokens.add(tokens);
        requests.add(1, FAILED);
    }
}
