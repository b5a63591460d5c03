package io.moecluster.router;

/** A request field is out of range; the message names the field. Maps to INVALID_ARGUMENT. */
public final class InvalidRequestException extends Exception {
    public InvalidRequestException(String message) {
        super(message);
    }
}
