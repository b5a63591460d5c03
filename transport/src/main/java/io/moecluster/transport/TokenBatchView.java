package io.moecluster.transport;

import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderDecoder;
import io.moecluster.sbe.TokenBatchDecoder;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import org.agrona.DirectBuffer;

/**
 * A checked, reusable view of a received TokenBatch. {@link #wrap} validates every length and range
 * before anything else is read; the view is valid until the buffer is reused (for a poller handler:
 * until the handler returns).
 */
public final class TokenBatchView {
    /** The expert id of a whole-layer MoE request (attention to router), as opposed to one expert's rows. */
    public static final int WHOLE_LAYER = -1;
    /** Where the authTag lies from the start of a message. */
    static final int TAG_OFFSET = MessageHeaderDecoder.ENCODED_LENGTH + TokenBatchDecoder.authTagEncodingOffset();

    private final MessageHeaderDecoder header = new MessageHeaderDecoder();
    private final TokenBatchDecoder decoder = new TokenBatchDecoder();
    private DirectBuffer buffer;
    private int tokenCount;
    private int hiddenSize;
    private ElementType elementType;
    private boolean hasWeights;
    private int rowsOffset;
    private int rowsBytes;
    private int payloadLength;

    /**
     * @param length bytes of the message from offset (header + block + payload)
     * @throws MalformedMessageException naming the field and values that failed a check
     */
    public TokenBatchView wrap(DirectBuffer buffer, int offset, int length) throws MalformedMessageException {
        return wrap(buffer, offset, length, MessageMac.UNSIGNED);
    }

    /**
     * As {@link #wrap(DirectBuffer, int, int)}, and last the authTag is checked with {@code mac}
     * (the form {@link MessagePoller} uses): a message that does not verify is malformed, kind
     * {@link MalformedMessageException#UNAUTHENTICATED}.
     */
    public TokenBatchView wrap(DirectBuffer buffer, int offset, int length, MessageMac mac)
            throws MalformedMessageException {
        this.buffer = null;
        int blockLength = MessageHeaderCheck.check(header, buffer, offset, length, TokenBatchDecoder.TEMPLATE_ID,
                TokenBatchDecoder.BLOCK_LENGTH, "TokenBatch");
        decoder.wrap(buffer, offset + MessageHeaderDecoder.ENCODED_LENGTH, blockLength, header.version());
        int tokens = decoder.tokenCount();
        int hidden = decoder.hiddenSize();
        MessageHeaderCheck.checkDimensions("TokenBatch", decoder.batchId(), tokens, hidden);
        ElementType type = MessageHeaderCheck.elementType(decoder.elementTypeRaw());
        if (type == ElementType.NULL_VAL) {
            throw new MalformedMessageException(MalformedMessageException.BAD_ELEMENT_TYPE, "TokenBatch "
                    + decoder.batchId() + ": elementType " + decoder.elementTypeRaw() + " is not F32, BF16 or F16");
        }
        short weightsFlag = decoder.hasWeights();
        if (weightsFlag != 0 && weightsFlag != 1) {
            throw new MalformedMessageException(MalformedMessageException.BAD_FLAG, "TokenBatch "
                    + decoder.batchId() + ": hasWeights " + weightsFlag + ", expected 0 or 1");
        }
        int payload = decoder.payloadLength();
        MessageHeaderCheck.checkPayloadFits("TokenBatch", decoder.batchId(), payload, blockLength, length);
        long rows = (long) tokens * hidden * TokenRows.elementBytes(type);
        long expected = rows + (weightsFlag == 1 ? 4L * tokens : 0);
        if (payload != expected) {
            throw new MalformedMessageException(MalformedMessageException.PAYLOAD_LENGTH, "TokenBatch "
                    + decoder.batchId() + ": payloadLength " + payload + ", expected " + expected + " for "
                    + tokens + " tokens x " + hidden + " " + type + (weightsFlag == 1 ? " + weights" : ""));
        }
        MessageHeaderCheck.checkTag(mac, "TokenBatch", decoder.batchId(), buffer, offset, length, TAG_OFFSET);
        this.buffer = buffer;
        this.tokenCount = tokens;
        this.hiddenSize = hidden;
        this.elementType = type;
        this.hasWeights = weightsFlag == 1;
        this.payloadLength = payload;
        this.rowsOffset = offset + MessageHeaderDecoder.ENCODED_LENGTH + blockLength;
        this.rowsBytes = (int) rows;
        return this;
    }

    public long batchId() {
        return decoder.batchId();
    }

    public int layer() {
        return decoder.layer();
    }

    /** -1: the whole batch of a layer (to the router); >= 0: rows routed to that expert. */
    public int expertId() {
        return decoder.expertId();
    }

    public int tokenCount() {
        return tokenCount;
    }

    public int hiddenSize() {
        return hiddenSize;
    }

    public ElementType elementType() {
        return elementType;
    }

    public boolean hasWeights() {
        return hasWeights;
    }

    public int replyStreamId() {
        return decoder.replyStreamId();
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

    /** The buffer holding the rows, from {@link #rowsOffset()} for {@link #rowsBytes()} bytes. */
    public DirectBuffer buffer() {
        return buffer;
    }

    public int rowsOffset() {
        return rowsOffset;
    }

    public int rowsBytes() {
        return rowsBytes;
    }

    /** Widens the rows to f32 into f32Dst from float index firstFloat (tokenCount x hiddenSize floats). */
    public void copyRowsTo(MemorySegment f32Dst, long firstFloat) {
        TokenRows.decode(buffer, rowsOffset, tokenCount, hiddenSize, elementType, f32Dst, firstFloat);
    }

    /** Copies the tokenCount f32 routing weights into f32Dst from float index firstFloat; only when {@link #hasWeights()}. */
    public void copyWeightsTo(MemorySegment f32Dst, long firstFloat) {
        if (!hasWeights) {
            throw new IllegalStateException("TokenBatch " + batchId() + " carries no weights");
        }
        TokenRows.decode(buffer, rowsOffset + rowsBytes, 1, tokenCount, ElementType.F32, f32Dst, firstFloat);
    }

    /** The routing weight of one token; only when {@link #hasWeights()}. */
    public float weight(int token) {
        if (!hasWeights) {
            throw new IllegalStateException("TokenBatch " + batchId() + " carries no weights");
        }
        if (token < 0 || token >= tokenCount) {
            throw new IndexOutOfBoundsException("token " + token + " outside [0, " + tokenCount + ") of TokenBatch " + batchId());
        }
        return buffer.getFloat(rowsOffset + rowsBytes + 4 * token, ByteOrder.LITTLE_ENDIAN);
    }
}
