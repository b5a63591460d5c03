package io.moecluster.transport;

import java.lang.foreign.MemorySegment;

import io.moecluster.sbe.BatchResultDecoder;
import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderDecoder;
import org.agrona.DirectBuffer;

/**
 * A checked, reusable view of a received BatchResult: rows when the status is OK, a UTF-8 error
 * message when it is ERROR. Valid until the buffer is reused.
 */
public final class BatchResultView {
    /** Error messages are for people; longer ones are cut by the writer and refused here. */
    public static final int MAX_ERROR_BYTES = 4096;
    /** Where the authTag lies from the start of a message. */
    static final int TAG_OFFSET = MessageHeaderDecoder.ENCODED_LENGTH + BatchResultDecoder.authTagEncodingOffset();

    private final MessageHeaderDecoder header = new MessageHeaderDecoder();
    private final BatchResultDecoder decoder = new BatchResultDecoder();
    private DirectBuffer buffer;
    private BatchStatus status;
    private int tokenCount;
    private int hiddenSize;
    private ElementType elementType;
    private int payloadOffset;
    private int payloadLength;

    /**
     * @param length bytes of the message from offset (header + block + payload)
     * @throws MalformedMessageException naming the field and values that failed a check
     */
    public BatchResultView wrap(DirectBuffer buffer, int offset, int length) throws MalformedMessageException {
        return wrap(buffer, offset, length, MessageMac.UNSIGNED);
    }

    /**
     * As {@link #wrap(DirectBuffer, int, int)}, and last the authTag is checked with {@code mac}
     * (the form {@link MessagePoller} uses): a message that does not verify is malformed, kind
     * {@link MalformedMessageException#UNAUTHENTICATED}.
     */
    public BatchResultView wrap(DirectBuffer buffer, int offset, int length, MessageMac mac)
            throws MalformedMessageException {
        this.buffer = null;
        int blockLength = MessageHeaderCheck.check(header, buffer, offset, length, BatchResultDecoder.TEMPLATE_ID,
                BatchResultDecoder.BLOCK_LENGTH, "BatchResult");
        decoder.wrap(buffer, offset + MessageHeaderDecoder.ENCODED_LENGTH, blockLength, header.version());
        long batchId = decoder.batchId();
        BatchStatus st = MessageHeaderCheck.status(decoder.statusRaw());
        if (st == BatchStatus.NULL_VAL) {
            throw new MalformedMessageException(MalformedMessageException.BAD_STATUS, "BatchResult " + batchId
                    + ": status " + decoder.statusRaw() + " is not OK or ERROR");
        }
        int payload = decoder.payloadLength();
        MessageHeaderCheck.checkPayloadFits("BatchResult", batchId, payload, blockLength, length);
        int tokens = decoder.tokenCount();
        int hidden = decoder.hiddenSize();
        ElementType type = MessageHeaderCheck.elementType(decoder.elementTypeRaw());
        if (st == BatchStatus.OK) {
            MessageHeaderCheck.checkDimensions("BatchResult", batchId, tokens, hidden);
            if (type == ElementType.NULL_VAL) {
                throw new MalformedMessageException(MalformedMessageException.BAD_ELEMENT_TYPE, "BatchResult " + batchId
                        + ": elementType " + decoder.elementTypeRaw() + " is not F32, BF16 or F16");
            }
            long expected = (long) tokens * hidden * TokenRows.elementBytes(type);
            if (payload != expected) {
                throw new MalformedMessageException(MalformedMessageException.PAYLOAD_LENGTH, "BatchResult " + batchId
                        + ": payloadLength " + payload + ", expected " + expected + " for " + tokens + " tokens x "
                        + hidden + " " + type);
            }
        } else if (payload > MAX_ERROR_BYTES) {
            throw new MalformedMessageException(MalformedMessageException.PAYLOAD_LENGTH, "BatchResult " + batchId
                    + ": error message of " + payload + " bytes, over " + MAX_ERROR_BYTES);
        }
        MessageHeaderCheck.checkTag(mac, "BatchResult", batchId, buffer, offset, length, TAG_OFFSET);
        this.buffer = buffer;
        this.status = st;
        this.tokenCount = tokens;
        this.hiddenSize = hidden;
        this.elementType = type;
        this.payloadOffset = offset + MessageHeaderDecoder.ENCODED_LENGTH + blockLength;
        this.payloadLength = payload;
        return this;
    }

    public long batchId() {
        return decoder.batchId();
    }

    public int layer() {
        return decoder.layer();
    }

    public int expertId() {
        return decoder.expertId();
    }

    public BatchStatus status() {
        return status;
    }

    public boolean isOk() {
        return status == BatchStatus.OK;
    }

    /** Rows in the result (0 for ERROR). */
    public int tokenCount() {
        return status == BatchStatus.OK ? tokenCount : 0;
    }

    public int hiddenSize() {
        return hiddenSize;
    }

    public ElementType elementType() {
        return elementType;
    }

    public int senderId() {
        return decoder.senderId();
    }

    public long traceIdHigh() {
        return decoder.traceIdHigh();
    }

    public long traceIdLow() {
        return decoder.traceIdLow();
    }

    public long spanId() {
        return decoder.spanId();
    }

    public int traceFlags() {
        return decoder.traceFlags();
    }

    public int payloadLength() {
        return payloadLength;
    }

    public DirectBuffer buffer() {
        return buffer;
    }

    public int payloadOffset() {
        return payloadOffset;
    }

    /** Widens the rows to f32 into f32Dst from float index firstFloat; only for status OK. */
    public void copyRowsTo(MemorySegment f32Dst, long firstFloat) {
        if (status != BatchStatus.OK) {
            throw new IllegalStateException("BatchResult " + batchId() + " is " + status + ", it has no rows");
        }
        TokenRows.decode(buffer, payloadOffset, tokenCount, hiddenSize, elementType, f32Dst, firstFloat);
    }

    /** The error message of an ERROR result (allocates; errors are off the hot path). */
    public String errorMessage() {
        if (status != BatchStatus.ERROR) {
            throw new IllegalStateException("BatchResult " + batchId() + " is " + status + ", it has no error message");
        }
        return buffer.getStringWithoutLengthUtf8(payloadOffset, payloadLength);
    }

}
