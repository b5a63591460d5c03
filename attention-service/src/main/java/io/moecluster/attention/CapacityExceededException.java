package io.moecluster.attention;

/** A {@link GenerationLoop} already holds as many requests as it may; the gRPC layer answers RESOURCE_EXHAUSTED. */
public final class CapacityExceededException extends RuntimeException {
    public CapacityExceededException(String message) {
        super(message);
    }
}
