package io.moecluster.transport;

import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderDecoder;
import org.agrona.DirectBuffer;

/** The checks every data-plane message passes before its block is read. */
final class MessageHeaderCheck {
    static final int MAX_TOKENS = 1 << 20;
    static final int MAX_HIDDEN = 1 << 16;

    private MessageHeaderCheck() {
    }

    /**
     * Checks length, schema, template, version and block length; leaves header wrapped.
     *
     * @return the block length to act on (newer versions may append fields to the block)
     */
    static int check(MessageHeaderDecoder header, DirectBuffer buffer, int offset, int length,
                     int templateId, int minBlockLength, String message) throws MalformedMessageException {
        if (offset < 0 || length < 0 || (long) offset + length > buffer.capacity()) {
            throw new MalformedMessageException(MalformedMessageException.TRUNCATED, message + ": range [" + offset
                    + ", " + ((long) offset + length) + ") outside a buffer of " + buffer.capacity() + " bytes");
        }
        if (length < MessageHeaderDecoder.ENCODED_LENGTH) {
            throw new MalformedMessageException(MalformedMessageException.TRUNCATED, message + ": " + length
                    + " bytes, shorter than the " + MessageHeaderDecoder.ENCODED_LENGTH + "-byte message header");
        }
        header.wrap(buffer, offset);
        if (header.schemaId() != MessageHeaderDecoder.SCHEMA_ID) {
            throw new MalformedMessageException(MalformedMessageException.BAD_SCHEMA, message + ": schemaId "
                    + header.schemaId() + ", expected " + MessageHeaderDecoder.SCHEMA_ID);
        }
        if (header.templateId() != templateId) {
            throw new MalformedMessageException(MalformedMessageException.BAD_TEMPLATE, message + ": templateId "
                    + header.templateId() + ", expected " + templateId);
        }
        if (header.version() < MessageHeaderDecoder.SCHEMA_VERSION) {
            // Version 1 had no authTag: a service of an older release; a cluster runs one release.
            throw new MalformedMessageException(MalformedMessageException.BAD_VERSION, message + ": version "
                    + header.version() + ", expected >= " + MessageHeaderDecoder.SCHEMA_VERSION
                    + " (a service of an older release?)");
        }
        int blockLength = header.blockLength();
        if (blockLength < minBlockLength) {
            throw new MalformedMessageException(MalformedMessageException.BAD_BLOCK_LENGTH, message
                    + ": blockLength " + blockLength + ", expected >= " + minBlockLength);
        }
        if (MessageHeaderDecoder.ENCODED_LENGTH + blockLength > length) {
            throw new MalformedMessageException(MalformedMessageException.TRUNCATED, message + ": " + length
                    + " bytes, shorter than header + block of " + (MessageHeaderDecoder.ENCODED_LENGTH + blockLength));
        }
        return blockLength;
    }

    /**
     * The element type a raw byte names; NULL_VAL for any other value. (The generated decoder's
     * {@code elementType()} throws IllegalArgumentException for an unknown byte: found by fuzzing.)
     */
    static ElementType elementType(short raw) {
        return switch (raw) {
            case 0 -> ElementType.F32;
            case 1 -> ElementType.BF16;
            case 2 -> ElementType.F16;
            default -> ElementType.NULL_VAL;
        };
    }

    /** The status a raw byte names; NULL_VAL for any other value (as {@link #elementType}). */
    static BatchStatus status(short raw) {
        return switch (raw) {
            case 0 -> BatchStatus.OK;
            case 1 -> BatchStatus.ERROR;
            default -> BatchStatus.NULL_VAL;
        };
    }

    // Messages are built only on failure: the hot path must not allocate.
    static void checkDimensions(String what, long batchId, int tokenCount, int hiddenSize) throws MalformedMessageException {
        if (tokenCount < 0 || tokenCount > MAX_TOKENS) {
            throw new MalformedMessageException(MalformedMessageException.BAD_DIMENSION, what + " " + batchId + ": tokenCount "
                    + tokenCount + " outside [0, " + MAX_TOKENS + "]");
        }
        if (hiddenSize < 1 || hiddenSize > MAX_HIDDEN) {
            throw new MalformedMessageException(MalformedMessageException.BAD_DIMENSION, what + " " + batchId + ": hiddenSize "
                    + hiddenSize + " outside [1, " + MAX_HIDDEN + "]");
        }
    }

    /**
     * Checks the message's authTag ({@code tagOffset} from the message start) with {@code mac};
     * the last check of a view, so a forged message reaches no handler.
     */
    static void checkTag(MessageMac mac, String what, long batchId, DirectBuffer buffer, int offset, int length,
                         int tagOffset) throws MalformedMessageException {
        if (!mac.verify(buffer, offset, length, tagOffset)) {
            throw new MalformedMessageException(MalformedMessageException.UNAUTHENTICATED, what + " " + batchId
                    + (mac.enabled() ? ": its authTag does not verify with the data-plane secret (a sender without "
                            + "the cluster's secret, or a corrupted message)"
                            : ": it is signed, but this service has no data-plane secret (configure the same secret on "
                            + "every service)"));
        }
    }

    /** Checks payloadLength against what is left of the message after header and block. */
    static void checkPayloadFits(String what, long batchId, int payloadLength, int blockLength, int length)
            throws MalformedMessageException {
        long needed = (long) MessageHeaderDecoder.ENCODED_LENGTH + blockLength + payloadLength;
        if (payloadLength < 0 || needed > length) {
            throw new MalformedMessageException(MalformedMessageException.PAYLOAD_LENGTH, what + " " + batchId + ": payloadLength "
                    + payloadLength + " needs " + needed + " bytes, the message has " + length);
        }
    }
}
