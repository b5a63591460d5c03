package io.moecluster.transport;

import io.aeron.Aeron;

/** Aeron clients of a media driver another process (or an {@link EmbeddedMediaDriver}) runs. */
public final class AeronClients {
    private AeronClients() {
    }

    /**
     * Connects to the driver in {@code aeronDir}; fails within the driver timeout, naming the
     * directory, when no driver runs there.
     */
    public static Aeron connect(String aeronDir) {
        try {
            return Aeron.connect(new Aeron.Context().aeronDirectoryName(aeronDir).driverTimeoutMs(10_000));
        } catch (RuntimeException e) {
            throw new TransportException("no Aeron media driver reachable in " + aeronDir + ": " + e.getMessage(), e);
        }
    }
}
