package io.moecluster.core.backend;

import io.moecluster.core.parallel.WorkerPool;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Finds compute backend providers on the class path and opens the one asked for. */
public final class ComputeBackends {
    private static final Logger LOG = LoggerFactory.getLogger(ComputeBackends.class);
    /** The backend of every engine and service unless {@code --backend} says otherwise. */
    public static final String DEFAULT = "cpu";

    private ComputeBackends() {
    }

    /** Every provider on the class path, by name (the first of a name wins). */
    public static List<ComputeBackendProvider> providers() {
        List<ComputeBackendProvider> found = new ArrayList<>();
        for (ComputeBackendProvider p : ServiceLoader.load(ComputeBackendProvider.class)) {
            if (found.stream().noneMatch(q -> q.name().equals(p.name()))) {
                found.add(p);
            }
        }
        return found;
    }

    /** The provider called {@code name}; an error lists the known ones. */
    public static ComputeBackendProvider provider(String name) {
        return find(name, providers());
    }

    /**
     * Opens backend {@code name} on {@code pool} and logs which one runs. A backend that cannot
     * run here fails with every reason its provider gave.
     */
    public static ComputeBackend open(String name, WorkerPool pool) {
        return open(provider(name), pool);
    }

    static ComputeBackendProvider find(String name, List<ComputeBackendProvider> providers) {
        return providers.stream().filter(p -> p.name().equals(name)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("--backend: unknown compute backend '" + name + "'; known: "
                        + providers.stream().map(ComputeBackendProvider::name).collect(Collectors.joining(", "))));
    }

    static ComputeBackend open(ComputeBackendProvider provider, WorkerPool pool) {
        Availability availability = provider.availability();
        if (!availability.available()) {
            throw new IllegalArgumentException("--backend " + provider.name() + ": cannot run on this machine: "
                    + availability.describe());
        }
        ComputeBackend backend = provider.open(pool);
        LOG.info("compute backend {}: {}", backend.name(), backend.description());
        return backend;
    }
}
