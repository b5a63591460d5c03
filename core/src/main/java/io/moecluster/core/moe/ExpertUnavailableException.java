package io.moecluster.core.moe;

/**
 * An expert could not produce its rows: its service is gone, answered with an error, or did not
 * answer in time. The request that needed it fails (gRPC UNAVAILABLE); the router keeps serving.
 */
public final class ExpertUnavailableException extends RuntimeException {
    private final int layer;
    private final int expert;

    public ExpertUnavailableException(int layer, int expert, String message) {
        super(message);
        this.layer = layer;
        this.expert = expert;
    }

    public int layer() {
        return layer;
    }

    public int expert() {
        return expert;
    }
}
