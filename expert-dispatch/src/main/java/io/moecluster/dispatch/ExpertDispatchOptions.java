package io.moecluster.dispatch;

import io.moecluster.discovery.ServiceRegistry;
import java.time.Duration;

/**
 * How the MoE router reaches the expert services.
 *
 * @param registry where the expert services are found and watched; null = the cluster file's list,
 *     fixed at start
 * @param replyTimeout how long one layer may wait for all its expert answers before it fails
 * @param attemptTimeout how long one replica may take with a batch before the batch also goes to
 *     another replica of the expert (a replica that lost its subscriber is left at once)
 * @param publishDeadline how long an offer may wait for back-pressure or a connection
 */
public record ExpertDispatchOptions(ServiceRegistry registry, Duration replyTimeout, Duration attemptTimeout,
                                    Duration publishDeadline) {
    public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(2);

    public ExpertDispatchOptions {
        if (replyTimeout.isNegative() || replyTimeout.isZero()) {
            throw new IllegalArgumentException("expert reply timeout must be positive, got " + replyTimeout);
        }
        if (attemptTimeout.isNegative() || attemptTimeout.isZero()) {
            throw new IllegalArgumentException("replica attempt timeout must be positive, got " + attemptTimeout);
        }
    }

    /** The cluster file's placement, fixed; a replica gets {@link #DEFAULT_ATTEMPT_TIMEOUT} or the reply timeout if shorter. */
    public static ExpertDispatchOptions fixed(Duration replyTimeout) {
        return new ExpertDispatchOptions(null, replyTimeout, min(DEFAULT_ATTEMPT_TIMEOUT, replyTimeout), Duration.ofSeconds(2));
    }

    public ExpertDispatchOptions withRegistry(ServiceRegistry r) {
        return new ExpertDispatchOptions(r, replyTimeout, attemptTimeout, publishDeadline);
    }

    public ExpertDispatchOptions withAttemptTimeout(Duration t) {
        return new ExpertDispatchOptions(registry, replyTimeout, t, publishDeadline);
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }
}
