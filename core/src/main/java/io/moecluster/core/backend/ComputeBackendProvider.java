package io.moecluster.core.backend;

import io.moecluster.core.parallel.WorkerPool;

/**
 * A kind of compute backend, found with {@link java.util.ServiceLoader} (listed in
 * {@code META-INF/services/io.moecluster.core.backend.ComputeBackendProvider}), so a backend in
 * another jar (the GPU one, with its native bindings) joins without anything here naming it.
 * Providers are cheap to construct: they look for libraries and devices in {@link #availability()}
 * and open nothing before {@link #open}.
 */
public interface ComputeBackendProvider {
    /** The name {@code --device} selects it by: {@code cpu}, {@code cuda}. */
    String name();

    /** Whether it can run here (on its first device); checked before {@link #open}. */
    Availability availability();

    /**
     * Whether it has several devices that {@code --device NAME:INDEX} chooses between ({@code cuda:1});
     * false for {@code cpu}, which then refuses an index.
     */
    default boolean hasDevices() {
        return false;
    }

    /** Whether it can run on device {@code index}; the default knows only {@link #availability()}. */
    default Availability availability(int index) {
        return availability();
    }

    /** What it would run on here, for {@code moe backends}: the vector width, the device; empty if unknown. */
    default String description() {
        return "";
    }

    /**
     * Opens the backend for one engine or expert service.
     *
     * @param pool the owner's CPU threads: the CPU backend computes on them, a device backend may
     *     use them for host-side work
     */
    ComputeBackend open(WorkerPool pool);

    /** Opens it on device {@code index} ({@link #hasDevices()}); the default has one device only. */
    default ComputeBackend open(WorkerPool pool, int index) {
        if (index != 0) {
            throw new IllegalArgumentException("--device " + name() + ":" + index + ": " + name() + " has no devices to choose");
        }
        return open(pool);
    }
}
