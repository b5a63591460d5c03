package io.moecluster.router;

/**
 * A request field is out of range; the message names the field, and {@link #param()} is its name
 * in the API the request came through (null when no single field is to blame). Maps to
 * INVALID_ARGUMENT in gRPC and to 400 over HTTP.
 */
public final class InvalidRequestException extends Exception {
    private final String param;

    public InvalidRequestException(String message) {
        this(null, message);
    }

    public InvalidRequestException(String param, String message) {
        super(message);
        this.param = param;
    }

    public String param() {
        return param;
    }
}
