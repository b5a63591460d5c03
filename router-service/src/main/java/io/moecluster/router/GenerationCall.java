package io.moecluster.router;

/** A request a {@link GenerationService} started. */
public interface GenerationCall {
    /**
     * The client went away: stops the attention run (freeing its KV caches) and gives the admission
     * slot back; the listener hears nothing more. Idempotent; a no-op once the request ended.
     */
    void cancel();
}
