package io.moecluster.core.io;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a service opened, closed in reverse order: used while starting (a failure part way
 * closes what was already open) and when stopping. A resource that fails to close is logged and
 * the rest are still closed. Not thread-safe.
 */
public final class Closer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Closer.class);

    private final List<AutoCloseable> resources = new ArrayList<>();

    /** Registers {@code resource} to be closed before everything registered earlier; returns it. */
    public <T extends AutoCloseable> T add(T resource) {
        resources.add(resource);
        return resource;
    }

    /** Closes everything, last registered first, and forgets it; idempotent. */
    @Override
    public void close() {
        for (int i = resources.size() - 1; i >= 0; i--) {
            AutoCloseable r = resources.get(i);
            try {
                r.close();
            } catch (Exception e) {
                LOG.warn("closing {} failed: {}", r, e.toString());
            }
        }
        resources.clear();
    }

    /** Closes everything after {@code failure} interrupted a start, and returns {@code failure} to rethrow. */
    public <E extends Throwable> E closeAfter(E failure) {
        close();
        return failure;
    }
}
