package io.moecluster.discovery;

import java.util.List;
import java.util.function.Consumer;

/**
 * Where services announce themselves and the router finds the expert services. Two
 * implementations: {@link StaticFileRegistry} (the cluster file of a local cluster, re-read when it
 * changes) and the Consul adapter ({@code io.moecluster.consul.ConsulRegistry}).
 */
public interface ServiceRegistry extends AutoCloseable {
    /**
     * Announces {@code instance} and keeps it announced (heartbeats where the registry needs them)
     * until the returned handle is closed, which deregisters it. Fails with an exception naming the
     * registry when it cannot be reached.
     */
    Registration register(ServiceInstance instance);

    /**
     * Calls {@code listener} with every healthy expert service: once with the current set before
     * this returns, then after every change, from a registry thread (never two calls at once). A
     * registry that cannot be reached keeps the last set and retries; it never reports an empty
     * set because of its own failure.
     */
    Watch watchExperts(Consumer<List<ClusterSpec.Expert>> listener);

    /** A registration; closing it deregisters. */
    interface Registration extends AutoCloseable {
        @Override
        void close();
    }

    /** A running watch; closing it stops the callbacks. */
    interface Watch extends AutoCloseable {
        @Override
        void close();
    }

    @Override
    default void close() {
    }
}
