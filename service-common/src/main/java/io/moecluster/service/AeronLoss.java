package io.moecluster.service;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a service does when its Aeron client dies under it (a stall past the driver's liveness
 * timeout, a media driver that went away): its data plane is closed for good, so it stops saying
 * it serves (gRPC health NOT_SERVING, and whatever else registered with {@link #onLost}) and hands
 * the cause to its context's {@code onAeronLost} handler, which for {@code moe serve} exits the
 * process with {@link #EXIT_STATUS} so that its supervisor ({@code moe up}, Kubernetes) starts a
 * fresh one. Pass it to {@code AeronClients.connect} as the loss callback.
 */
public final class AeronLoss implements Consumer<Throwable> {
    private static final Logger LOG = LoggerFactory.getLogger(AeronLoss.class);
    /** The exit status of a service whose Aeron client was lost: EX_TEMPFAIL, "try again". */
    public static final int EXIT_STATUS = 75;

    private final String service;
    private final Consumer<Throwable> handler;
    private final List<Runnable> actions = new CopyOnWriteArrayList<>();
    private volatile Throwable cause;
    private volatile boolean closing;

    /** @param handler the context's {@code onAeronLost}; runs on an Aeron thread, must not block */
    public AeronLoss(String service, Consumer<Throwable> handler) {
        this.service = service;
        this.handler = handler;
    }

    /** Runs {@code action} when the client is lost (at once if it already was): health NOT_SERVING, say. */
    public void onLost(Runnable action) {
        actions.add(action);
        if (cause != null) {
            action.run();
        }
    }

    /** The service is stopping on purpose: a loss from now on is part of that, not news. */
    public void closing() {
        closing = true;
    }

    public boolean lost() {
        return cause != null;
    }

    @Override
    public void accept(Throwable t) {
        if (closing || cause != null) {
            return;
        }
        cause = t;
        LOG.error("{}: its Aeron client is gone ({}); it no longer serves (health NOT_SERVING)", service, t.toString());
        for (Runnable a : actions) {
            try {
                a.run();
            } catch (RuntimeException e) {
                LOG.warn("{}: {}", service, e.toString());
            }
        }
        handler.accept(t);
    }
}
