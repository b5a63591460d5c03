package io.moecluster.transport;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import io.moecluster.sbe.BatchResultEncoder;
import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderEncoder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Encodes BatchResult messages into reusable buffers and sends header and payload as one gathered
 * message. Trace context set with {@link #trace} applies to the next send only. Not thread-safe.
 */
public final class BatchResultWriter {
    private static final int HEADER_BYTES = MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.BLOCK_LENGTH;

    private final BoundedPublisher publisher;
    private final UnsafeBuffer headerBuffer = new UnsafeBuffer(new byte[HEADER_BYTES]);
    private final UnsafeBuffer errorBuffer = new UnsafeBuffer(new byte[BatchResultView.MAX_ERROR_BYTES]);
    private final MessageHeaderEncoder headerEncoder = new MessageHeaderEncoder();
    private final BatchResultEncoder encoder = new BatchResultEncoder();
    private final PayloadBuffer payload;
    private final MessageMac mac;
    private long traceIdHigh;
    private long traceIdLow;
    private long spanId;
    private short traceFlags;

    /** Unsigned messages (a cluster without a data-plane secret). */
    public BatchResultWriter(BoundedPublisher publisher) {
        this(publisher, DataPlaneAuth.none());
    }

    /** Messages signed with {@code auth}'s secret (unsigned when it has none). */
    public BatchResultWriter(BoundedPublisher publisher, DataPlaneAuth auth) {
        this.publisher = publisher;
        this.payload = new PayloadBuffer(publisher.maxMessageLength() - HEADER_BYTES);
        this.mac = auth.newMac();
    }

    /** W3C trace context for the next send. */
    public BatchResultWriter trace(long traceIdHigh, long traceIdLow, long spanId, int traceFlags) {
        this.traceIdHigh = traceIdHigh;
        this.traceIdLow = traceIdLow;
        this.spanId = spanId;
        this.traceFlags = (short) (traceFlags & 0xff);
        return this;
    }

    /** An OK result: tokenCount x hiddenSize rows of f32Rows from float index firstFloat, as elementType. */
    public void sendRows(long batchId, int layer, int expertId, int senderId,
                         MemorySegment f32Rows, long firstFloat, int tokenCount, int hiddenSize, ElementType elementType) {
        if (tokenCount < 0 || tokenCount > MessageHeaderCheck.MAX_TOKENS
                || hiddenSize < 1 || hiddenSize > MessageHeaderCheck.MAX_HIDDEN) {
            throw new IllegalArgumentException("BatchResult " + batchId + " dimensions " + tokenCount + " x " + hiddenSize
                    + " outside [0, " + MessageHeaderCheck.MAX_TOKENS + "] x [1, " + MessageHeaderCheck.MAX_HIDDEN + "]");
        }
        if (elementType == null || elementType == ElementType.NULL_VAL) {
            throw new IllegalArgumentException("BatchResult element type must be F32, BF16 or F16, got " + elementType);
        }
        int bytes = TokenRows.bytes(tokenCount, hiddenSize, elementType);
        UnsafeBuffer buf = payload.ensure(bytes, "BatchResult");
        TokenRows.encode(f32Rows, firstFloat, tokenCount, hiddenSize, elementType, buf, 0);
        encodeHeader(batchId, layer, expertId, senderId, tokenCount, hiddenSize, elementType, BatchStatus.OK, bytes);
        mac.sign(headerBuffer, HEADER_BYTES, BatchResultView.TAG_OFFSET, buf, 0, bytes);
        publisher.offer(headerBuffer, 0, HEADER_BYTES, buf, 0, bytes);
    }

    /** An ERROR result carrying message as UTF-8, cut to {@link BatchResultView#MAX_ERROR_BYTES}. Allocates. */
    public void sendError(long batchId, int layer, int expertId, int senderId, String message) {
        byte[] utf8 = (message == null ? "" : message).getBytes(StandardCharsets.UTF_8);
        int length = utf8Prefix(utf8, BatchResultView.MAX_ERROR_BYTES);
        errorBuffer.putBytes(0, utf8, 0, length);
        encodeHeader(batchId, layer, expertId, senderId, 0, 0, ElementType.F32, BatchStatus.ERROR, length);
        mac.sign(headerBuffer, HEADER_BYTES, BatchResultView.TAG_OFFSET, errorBuffer, 0, length);
        publisher.offer(headerBuffer, 0, HEADER_BYTES, errorBuffer, 0, length);
    }

    /** The longest prefix of at most max bytes that does not split a UTF-8 sequence. */
    private static int utf8Prefix(byte[] utf8, int max) {
        if (utf8.length <= max) {
            return utf8.length;
        }
        int end = max;
        while (end > 0 && (utf8[end] & 0xc0) == 0x80) {
            end--;
        }
        return end;
    }

    private void encodeHeader(long batchId, int layer, int expertId, int senderId, int tokenCount, int hiddenSize,
                              ElementType elementType, BatchStatus status, int payloadLength) {
        encoder.wrapAndApplyHeader(headerBuffer, 0, headerEncoder)
                .batchId(batchId)
                .layer(layer)
                .expertId(expertId)
                .tokenCount(tokenCount)
                .hiddenSize(hiddenSize)
                .elementType(elementType)
                .status(status)
                .senderId(senderId)
                .traceIdHigh(traceIdHigh)
                .traceIdLow(traceIdLow)
                .spanId(spanId)
                .traceFlags(traceFlags)
                .payloadLength(payloadLength);
        traceIdHigh = 0;
        traceIdLow = 0;
        spanId = 0;
        traceFlags = 0;
    }

    public BoundedPublisher publisher() {
        return publisher;
    }
}
