package io.moecluster.attention;

/** A request field is out of range; the message names the field. Maps to INVALID_ARGUMENT. */
public final class InvalidFieldException extends Exception {
    public InvalidFieldException(String message) {
        super(message);
    }
}
