package io.moecluster.transport;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderEncoder;
import io.moecluster.sbe.TokenBatchEncoder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Encodes TokenBatch messages into reusable buffers and sends header and rows as one gathered message.
 * Trace context set with {@link #trace} applies to the next send only. Not thread-safe.
 */
public final class TokenBatchWriter {
    private static final int HEADER_BYTES = MessageHeaderEncoder.ENCODED_LENGTH + TokenBatchEncoder.BLOCK_LENGTH;

    private final BoundedPublisher publisher;
    private final UnsafeBuffer headerBuffer = new UnsafeBuffer(new byte[HEADER_BYTES]);
    private final MessageHeaderEncoder headerEncoder = new MessageHeaderEncoder();
    private final TokenBatchEncoder encoder = new TokenBatchEncoder();
    private final PayloadBuffer payload;
    private final MessageMac mac;
    private long traceIdHigh;
    private long traceIdLow;
    private long spanId;
    private short traceFlags;

    /** Unsigned messages (a cluster without a data-plane secret). */
    public TokenBatchWriter(BoundedPublisher publisher) {
        this(publisher, DataPlaneAuth.none());
    }

    /** Messages signed with {@code auth}'s secret (unsigned when it has none). */
    public TokenBatchWriter(BoundedPublisher publisher, DataPlaneAuth auth) {
        this.publisher = publisher;
        this.payload = new PayloadBuffer(publisher.maxMessageLength() - HEADER_BYTES);
        this.mac = auth.newMac();
    }

    /** W3C trace context for the next send. */
    public TokenBatchWriter trace(long traceIdHigh, long traceIdLow, long spanId, int traceFlags) {
        this.traceIdHigh = traceIdHigh;
        this.traceIdLow = traceIdLow;
        this.spanId = spanId;
        this.traceFlags = (short) (traceFlags & 0xff);
        return this;
    }

    /** Sends tokenCount x hiddenSize rows of f32Rows from float index firstFloat, as elementType, without weights. */
    public void send(long batchId, int layer, int expertId, int senderId, int replyStreamId,
                     MemorySegment f32Rows, long firstFloat, int tokenCount, int hiddenSize, ElementType elementType) {
        int rows = prepare(tokenCount, hiddenSize, elementType, 0);
        sendPrepared(batchId, layer, expertId, senderId, replyStreamId, f32Rows, firstFloat, tokenCount, hiddenSize,
                elementType, false, rows);
    }

    /** As {@link #send}, followed by tokenCount f32 routing weights from weights[0..tokenCount). */
    public void send(long batchId, int layer, int expertId, int senderId, int replyStreamId,
                     MemorySegment f32Rows, long firstFloat, int tokenCount, int hiddenSize, ElementType elementType,
                     float[] weights) {
        if (weights.length < tokenCount) {
            throw new IllegalArgumentException("TokenBatch " + batchId + ": " + weights.length + " weights for "
                    + tokenCount + " tokens");
        }
        int rows = prepare(tokenCount, hiddenSize, elementType, 4 * tokenCount);
        UnsafeBuffer buf = payload.ensure(rows + 4 * tokenCount, "TokenBatch");
        for (int i = 0; i < tokenCount; i++) {
            buf.putFloat(rows + 4 * i, weights[i], ByteOrder.LITTLE_ENDIAN);
        }
        sendPrepared(batchId, layer, expertId, senderId, replyStreamId, f32Rows, firstFloat, tokenCount, hiddenSize,
                elementType, true, rows);
    }

    /** As {@link #send}, followed by tokenCount f32 routing weights from f32Weights at float index firstWeight. */
    public void send(long batchId, int layer, int expertId, int senderId, int replyStreamId,
                     MemorySegment f32Rows, long firstFloat, int tokenCount, int hiddenSize, ElementType elementType,
                     MemorySegment f32Weights, long firstWeight) {
        int rows = prepare(tokenCount, hiddenSize, elementType, 4 * tokenCount);
        UnsafeBuffer buf = payload.ensure(rows + 4 * tokenCount, "TokenBatch");
        TokenRows.encode(f32Weights, firstWeight, 1, tokenCount, ElementType.F32, buf, rows);
        sendPrepared(batchId, layer, expertId, senderId, replyStreamId, f32Rows, firstFloat, tokenCount, hiddenSize,
                elementType, true, rows);
    }

    private int prepare(int tokenCount, int hiddenSize, ElementType elementType, int weightBytes) {
        if (tokenCount < 0 || tokenCount > MessageHeaderCheck.MAX_TOKENS
                || hiddenSize < 1 || hiddenSize > MessageHeaderCheck.MAX_HIDDEN) {
            throw new IllegalArgumentException("TokenBatch dimensions " + tokenCount + " x " + hiddenSize
                    + " outside [0, " + MessageHeaderCheck.MAX_TOKENS + "] x [1, " + MessageHeaderCheck.MAX_HIDDEN + "]");
        }
        if (elementType == null || elementType == ElementType.NULL_VAL) {
            throw new IllegalArgumentException("TokenBatch element type must be F32, BF16 or F16, got " + elementType);
        }
        int rows = TokenRows.bytes(tokenCount, hiddenSize, elementType);
        payload.ensure(rows + weightBytes, "TokenBatch");
        return rows;
    }

    private void sendPrepared(long batchId, int layer, int expertId, int senderId, int replyStreamId,
                              MemorySegment f32Rows, long firstFloat, int tokenCount, int hiddenSize,
                              ElementType elementType, boolean hasWeights, int rowBytes) {
        UnsafeBuffer buf = payload.ensure(rowBytes, "TokenBatch");
        TokenRows.encode(f32Rows, firstFloat, tokenCount, hiddenSize, elementType, buf, 0);
        int payloadLength = rowBytes + (hasWeights ? 4 * tokenCount : 0);
        encoder.wrapAndApplyHeader(headerBuffer, 0, headerEncoder)
                .batchId(batchId)
                .layer(layer)
                .expertId(expertId)
                .tokenCount(tokenCount)
                .hiddenSize(hiddenSize)
                .elementType(elementType)
                .hasWeights((short) (hasWeights ? 1 : 0))
                .replyStreamId(replyStreamId)
                .senderId(senderId)
                .traceIdHigh(traceIdHigh)
                .traceIdLow(traceIdLow)
                .spanId(spanId)
                .traceFlags(traceFlags)
                .payloadLength(payloadLength);
        clearTrace();
        mac.sign(headerBuffer, HEADER_BYTES, TokenBatchView.TAG_OFFSET, buf, 0, payloadLength);
        publisher.offer(headerBuffer, 0, HEADER_BYTES, buf, 0, payloadLength);
    }

    private void clearTrace() {
        traceIdHigh = 0;
        traceIdLow = 0;
        spanId = 0;
        traceFlags = 0;
    }

    public BoundedPublisher publisher() {
        return publisher;
    }
}
