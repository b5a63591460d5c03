package io.moecluster.service;

import io.grpc.Server;
import io.grpc.protobuf.services.HealthStatusManager;
import java.util.concurrent.TimeUnit;

/** How a service stops its gRPC server: health says so first, calls in flight get a grace period. */
public final class GrpcServers {
    /** How long calls in flight may take to finish, and then how long a forced stop may take. */
    private static final long GRACE_SECONDS = 5;

    private GrpcServers() {
    }

    /**
     * Marks health NOT_SERVING for good, stops taking calls, runs {@code meanwhile} (what ends the
     * calls in flight, e.g. a generation loop failing its sequences), then waits up to 5 s for the
     * calls to finish before cancelling the rest.
     */
    public static void stop(Server server, HealthStatusManager health, Runnable meanwhile) {
        stop(server, health, meanwhile, () -> { });
    }

    /**
     * As {@link #stop(Server, HealthStatusManager, Runnable)}; calls still running after the grace
     * period are first given {@code endTheRest} (which ends them with a status of the service's
     * choosing, UNAVAILABLE, say) and a second to send it, before the rest are cancelled (which a
     * client sees as CANCELLED).
     */
    public static void stop(Server server, HealthStatusManager health, Runnable meanwhile, Runnable endTheRest) {
        health.enterTerminalState();
        server.shutdown();
        meanwhile.run();
        try {
            if (!server.awaitTermination(GRACE_SECONDS, TimeUnit.SECONDS)) {
                endTheRest.run();
                if (!server.awaitTermination(1, TimeUnit.SECONDS)) {
                    server.shutdownNow();
                    server.awaitTermination(GRACE_SECONDS, TimeUnit.SECONDS);
                }
            }
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
