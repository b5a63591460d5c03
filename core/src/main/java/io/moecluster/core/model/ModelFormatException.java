package io.moecluster.core.model;

/**
 * A model directory, config or checkpoint that cannot be served. The message always names the
 * file (and the tensor or field, where there is one) so that an operator can fix it without a
 * debugger.
 */
public final class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
