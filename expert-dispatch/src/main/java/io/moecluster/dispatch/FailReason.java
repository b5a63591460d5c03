package io.moecluster.dispatch;

/**
 * Why a replica did not deliver a batch. The reason decides what happens to the replica: one that
 * cannot be reached, went away or is too slow is quarantined; one that answered an error is not
 * (the same request may fail anywhere, and one bad request must not empty the placement table).
 */
enum FailReason {
    /** Its publication could not take the batch: no subscriber, or back-pressure past the deadline. */
    UNREACHABLE(true, "unreachable"),
    /** Its publication lost its subscriber while the batch was out: the process stopped or was timed out. */
    DISCONNECTED(true, "disconnected"),
    /** No answer within the attempt timeout. */
    SLOW(true, "no answer in time"),
    /** It answered an ERROR, or rows of the wrong shape. */
    ERROR_ANSWER(false, "answered an error");

    private final boolean quarantines;
    private final String description;

    FailReason(boolean quarantines, String description) {
        this.quarantines = quarantines;
        this.description = description;
    }

    boolean quarantines() {
        return quarantines;
    }

    String description() {
        return description;
    }
}
