package io.moecluster.transport;

import org.agrona.concurrent.IdleStrategy;

/**
 * A daemon thread that polls a {@link MessagePoller} until stopped, idling by the data-plane
 * strategy ({@link IdleStrategies#dataPlane()}) when there is nothing to read. Handlers run on it.
 */
public final class PollingThread implements AutoCloseable {
    private final Thread thread;
    private volatile boolean running = true;

    public PollingThread(String name, MessagePoller poller, int fragmentLimit) {
        this.thread = new Thread(() -> {
            IdleStrategy idle = IdleStrategies.dataPlane();
            while (running) {
                idle.idle(poller.poll(fragmentLimit));
            }
        }, name);
        this.thread.setDaemon(true);
    }

    public PollingThread start() {
        thread.start();
        return this;
    }

    /** Stops polling and waits for the handler in progress, if any, to finish. */
    @Override
    public void close() {
        running = false;
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
