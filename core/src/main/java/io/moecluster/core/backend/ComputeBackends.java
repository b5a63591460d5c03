package io.moecluster.core.backend;

import io.moecluster.core.parallel.WorkerPool;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.ServiceLoader;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Finds compute backend providers on the class path and opens the one {@code --device} asks for. */
public final class ComputeBackends {
    private static final Logger LOG = LoggerFactory.getLogger(ComputeBackends.class);
    /** The backend of every engine and service unless {@code --device} says otherwise. */
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

    /**
     * The provider of {@code device} ({@code cpu}, {@code cuda}, {@code cuda:1}); an unknown name
     * lists the known ones, an index on a backend without devices is refused.
     */
    public static ComputeBackendProvider provider(String device) {
        return provider(DeviceSpec.parse(device), providers());
    }

    /**
     * Checks {@code device} as {@link #open} would, without opening anything: an unknown name, an
     * index it cannot take, or a backend that cannot run here fails naming every reason.
     */
    public static void requireAvailable(String device) {
        DeviceSpec spec = DeviceSpec.parse(device);
        check(spec, provider(spec, providers()));
    }

    /**
     * Opens {@code device} on {@code pool} and logs which backend runs. A backend that cannot run
     * here fails with every reason its provider gave.
     */
    public static ComputeBackend open(String device, WorkerPool pool) {
        DeviceSpec spec = DeviceSpec.parse(device);
        return open(spec, provider(spec, providers()), pool);
    }

    static ComputeBackendProvider find(String name, List<ComputeBackendProvider> providers) {
        return provider(DeviceSpec.parse(name), providers);
    }

    static ComputeBackendProvider provider(DeviceSpec spec, List<ComputeBackendProvider> providers) {
        ComputeBackendProvider p = providers.stream().filter(q -> q.name().equals(spec.backend())).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("--device: unknown compute backend '" + spec.backend()
                        + "'; known: " + providers.stream().map(ComputeBackendProvider::name).collect(Collectors.joining(", "))));
        if (spec.index().isPresent() && !p.hasDevices()) {
            throw new IllegalArgumentException("--device " + spec + ": " + p.name() + " takes no device index");
        }
        return p;
    }

    static ComputeBackend open(DeviceSpec spec, List<ComputeBackendProvider> providers, WorkerPool pool) {
        return open(spec, provider(spec, providers), pool);
    }

    static ComputeBackend open(ComputeBackendProvider provider, WorkerPool pool) {
        return open(new DeviceSpec(provider.name(), OptionalInt.empty()), provider, pool);
    }

    private static void check(DeviceSpec spec, ComputeBackendProvider provider) {
        Availability availability = spec.index().isPresent() ? provider.availability(spec.indexOrZero())
                : provider.availability();
        if (!availability.available()) {
            throw new IllegalArgumentException("--device " + spec + ": cannot run on this machine: "
                    + availability.describe());
        }
    }

    private static ComputeBackend open(DeviceSpec spec, ComputeBackendProvider provider, WorkerPool pool) {
        check(spec, provider);
        ComputeBackend backend = spec.index().isPresent() ? provider.open(pool, spec.indexOrZero()) : provider.open(pool);
        LOG.info("compute backend {}: {}", backend.name(), backend.description());
        return backend;
    }
}
