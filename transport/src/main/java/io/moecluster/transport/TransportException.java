package io.moecluster.transport;

/** A send on the data plane failed: the message names channel, stream and why. */
public final class TransportException extends RuntimeException {
    public TransportException(String message) {
        super(message);
    }

    public TransportException(String message, Throwable cause) {
        super(message, cause);
    }
}
