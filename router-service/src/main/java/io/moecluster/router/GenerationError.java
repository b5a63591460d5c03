package io.moecluster.router;

/**
 * Why a request failed, whichever API it came through: gRPC maps the kind to a status code,
 * HTTP to a status (400, 429, 503).
 */
public record GenerationError(Kind kind, String message) {
    public enum Kind {
        /** A value the router did not check was refused by the attention replica. */
        INVALID_ARGUMENT,
        /** The cluster (admission control) or an attention replica is full. */
        RESOURCE_EXHAUSTED,
        /** An attention replica or an expert service failed or cannot be reached. */
        UNAVAILABLE
    }
}
