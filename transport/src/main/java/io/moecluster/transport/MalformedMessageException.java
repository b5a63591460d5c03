package io.moecluster.transport;

/**
 * A received message failed a length, range or identity check and must be dropped.
 * Checked on purpose: malformed input from the network is an expected outcome, not a bug,
 * so every caller of a view's {@code wrap} decides what to do with it.
 * No stack trace: the cause is the bytes, not the code path, and a flood of bad messages
 * should not cost a stack walk each.
 */
public final class MalformedMessageException extends Exception {
    public static final String TRUNCATED = "truncated";
    public static final String BAD_SCHEMA = "bad-schema";
    public static final String BAD_TEMPLATE = "bad-template";
    public static final String BAD_VERSION = "bad-version";
    public static final String BAD_BLOCK_LENGTH = "bad-block-length";
    public static final String BAD_DIMENSION = "bad-dimension";
    public static final String BAD_ELEMENT_TYPE = "bad-element-type";
    public static final String BAD_FLAG = "bad-flag";
    public static final String BAD_STATUS = "bad-status";
    public static final String PAYLOAD_LENGTH = "payload-length";
    /** The authTag did not verify (or a signed message reached a service without a secret). */
    public static final String UNAUTHENTICATED = "unauthenticated";

    private final String kind;

    public MalformedMessageException(String kind, String message) {
        super(message, null, false, false);
        this.kind = kind;
    }

    /** A short stable name of what was wrong, used as a metrics label. */
    public String kind() {
        return kind;
    }

    @Override
    public String toString() {
        return "MalformedMessageException[" + kind + "]: " + getMessage();
    }
}
