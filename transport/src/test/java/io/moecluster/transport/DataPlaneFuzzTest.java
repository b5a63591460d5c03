package io.moecluster.transport;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.moecluster.sbe.BatchResultDecoder;
import io.moecluster.sbe.MessageHeaderDecoder;
import io.moecluster.sbe.TokenBatchDecoder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Set;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Fuzz tests of the data plane's decoders (Jazzer). Every input is a message as the network could
 * deliver it. Properties: nothing thrown escapes; a view accepts exactly what the schema allows
 * (checked against an independent reading of the bytes, {@link #tokenBatchOk} and
 * {@link #batchResultOk}), and what it accepts can be read in full; the poller hands a handler
 * exactly the well-formed messages (nothing is computed for the others) and counts every other;
 * with a cluster secret, no input reaches a handler at all.
 *
 * <p>{@code ./mvn25 verify} runs the regression inputs under
 * {@code src/test/resources/io/moecluster/transport/DataPlaneFuzzTestInputs/}; {@code scripts/fuzz.sh}
 * fuzzes each target for 10^6 inputs (README, Security).
 */
class DataPlaneFuzzTest {
    static final int RUNS = 1_000_000;
    private static final Set<String> KINDS = Set.of(MalformedMessageException.TRUNCATED,
            MalformedMessageException.BAD_SCHEMA, MalformedMessageException.BAD_TEMPLATE,
            MalformedMessageException.BAD_VERSION, MalformedMessageException.BAD_BLOCK_LENGTH,
            MalformedMessageException.BAD_DIMENSION, MalformedMessageException.BAD_ELEMENT_TYPE,
            MalformedMessageException.BAD_FLAG, MalformedMessageException.BAD_STATUS,
            MalformedMessageException.PAYLOAD_LENGTH, MalformedMessageException.UNAUTHENTICATED);
    private static final int HEADER = MessageHeaderDecoder.ENCODED_LENGTH;

    private final TokenBatchView batch = new TokenBatchView();
    private final BatchResultView result = new BatchResultView();
    private final Handled handled = new Handled();
    private final MessagePoller poller = new MessagePoller(null, new MalformedMessageCounter("fuzz"), DataPlaneAuth.none())
            .onTokenBatch(handled::tokenBatch).onBatchResult(handled::batchResult);
    private final Handled signedHandled = new Handled();
    private final MessagePoller signedPoller = new MessagePoller(null, new MalformedMessageCounter("fuzz-signed"),
            DataPlaneAuth.fromText("fuzzing-secret-0123456789abcdef", "fuzz"))
            .onTokenBatch(signedHandled::tokenBatch).onBatchResult(signedHandled::batchResult);

    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void tokenBatchView(byte[] data) {
        UnsafeBuffer buffer = new UnsafeBuffer(data);
        boolean expected = tokenBatchOk(buffer, 0, data.length);
        try {
            batch.wrap(buffer, 0, data.length);
        } catch (MalformedMessageException e) {
            check(KINDS.contains(e.kind()), "unknown kind " + e.kind());
            check(!expected, "a well-formed TokenBatch was refused: " + e);
            return;
        }
        check(expected, "a malformed TokenBatch was accepted");
        readAll(batch);
    }

    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void batchResultView(byte[] data) {
        UnsafeBuffer buffer = new UnsafeBuffer(data);
        boolean expected = batchResultOk(buffer, 0, data.length);
        try {
            result.wrap(buffer, 0, data.length);
        } catch (MalformedMessageException e) {
            check(KINDS.contains(e.kind()), "unknown kind " + e.kind());
            check(!expected, "a well-formed BatchResult was refused: " + e);
            return;
        }
        check(expected, "a malformed BatchResult was accepted");
        readAll(result);
    }

    /**
     * The poller as a service runs it, the message at an offset in a larger buffer (the first
     * input byte picks it): each message is handled exactly when it is well-formed, else counted.
     */
    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void messagePoller(byte[] data) {
        if (data.length == 0) {
            return;
        }
        int offset = data[0] & 15;
        int length = data.length - 1;
        UnsafeBuffer buffer = new UnsafeBuffer(new byte[offset + length + (data[0] >>> 4 & 7)]);
        buffer.putBytes(offset, data, 1, length);
        boolean wellFormed = tokenBatchOk(buffer, offset, length) || batchResultOk(buffer, offset, length);
        long dropped = poller.counter().total();
        int before = handled.count;
        poller.onMessage(buffer, offset, length, null);
        int calls = handled.count - before;
        long counted = poller.counter().total() - dropped;
        check(calls + counted == 1, "a message must be handled or counted, exactly once: " + calls + " calls, "
                + counted + " counted");
        check((calls == 1) == wellFormed, wellFormed ? "a well-formed message was dropped: "
                + poller.counter().snapshot() : "a malformed message reached a handler");
    }

    /** With a cluster secret, nothing the fuzzer makes (it cannot know the key) reaches a handler. */
    @FuzzTest(maxDuration = "4h", maxExecutions = RUNS)
    void signedMessagePoller(byte[] data) {
        UnsafeBuffer buffer = new UnsafeBuffer(data);
        long dropped = signedPoller.counter().total();
        signedPoller.onMessage(buffer, 0, data.length, null);
        check(signedHandled.count == 0, "an unsigned or forged message reached a handler");
        check(signedPoller.counter().total() - dropped == 1, "every forged message is counted");
    }

    /** What a handler does with what it is given: reads every row and weight, checks the lengths. */
    private static final class Handled {
        int count;

        void tokenBatch(TokenBatchView b) {
            count++;
            readAll(b);
        }

        void batchResult(BatchResultView r) {
            count++;
            readAll(r);
        }
    }

    private static void readAll(TokenBatchView b) {
        long floats = (long) b.tokenCount() * b.hiddenSize();
        check(b.rowsBytes() == floats * TokenRows.elementBytes(b.elementType()), "rows bytes");
        check(b.payloadLength() == b.rowsBytes() + (b.hasWeights() ? 4L * b.tokenCount() : 0), "payload length");
        check((long) b.rowsOffset() + b.payloadLength() <= b.buffer().capacity(), "rows inside the buffer");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rows = arena.allocate(Math.max(4, 4 * floats));
            b.copyRowsTo(rows, 0);
            if (b.hasWeights()) {
                MemorySegment weights = arena.allocate(Math.max(4, 4L * b.tokenCount()));
                b.copyWeightsTo(weights, 0);
                if (b.tokenCount() > 0) {
                    b.weight(b.tokenCount() - 1);
                }
            }
        }
    }

    private static void readAll(BatchResultView r) {
        if (r.isOk()) {
            long floats = (long) r.tokenCount() * r.hiddenSize();
            check(r.payloadLength() == floats * TokenRows.elementBytes(r.elementType()), "payload length");
            try (Arena arena = Arena.ofConfined()) {
                r.copyRowsTo(arena.allocate(Math.max(4, 4 * floats)), 0);
            }
        } else {
            check(r.payloadLength() <= BatchResultView.MAX_ERROR_BYTES, "error message length");
            r.errorMessage();
        }
    }

    /** The schema, read straight from the bytes: is this a well-formed, unsigned TokenBatch? */
    static boolean tokenBatchOk(UnsafeBuffer b, int offset, int length) {
        int block = headerBlock(b, offset, length, TokenBatchDecoder.TEMPLATE_ID, TokenBatchDecoder.BLOCK_LENGTH);
        if (block < 0) {
            return false;
        }
        int at = offset + HEADER;
        long tokens = i32(b, at + TokenBatchDecoder.tokenCountEncodingOffset());
        long hidden = i32(b, at + TokenBatchDecoder.hiddenSizeEncodingOffset());
        int type = u8(b, at + TokenBatchDecoder.elementTypeEncodingOffset());
        int weights = u8(b, at + TokenBatchDecoder.hasWeightsEncodingOffset());
        long payload = i32(b, at + TokenBatchDecoder.payloadLengthEncodingOffset());
        if (tokens < 0 || tokens > 1 << 20 || hidden < 1 || hidden > 1 << 16 || type > 2 || weights > 1) {
            return false;
        }
        if (payload < 0 || HEADER + block + payload > length) {
            return false;
        }
        long size = type == 0 ? 4 : 2;
        return payload == tokens * hidden * size + (weights == 1 ? 4 * tokens : 0)
                && zeroTag(b, at + TokenBatchDecoder.authTagEncodingOffset());
    }

    /** The schema, read straight from the bytes: is this a well-formed, unsigned BatchResult? */
    static boolean batchResultOk(UnsafeBuffer b, int offset, int length) {
        int block = headerBlock(b, offset, length, BatchResultDecoder.TEMPLATE_ID, BatchResultDecoder.BLOCK_LENGTH);
        if (block < 0) {
            return false;
        }
        int at = offset + HEADER;
        int status = u8(b, at + BatchResultDecoder.statusEncodingOffset());
        long payload = i32(b, at + BatchResultDecoder.payloadLengthEncodingOffset());
        if (status > 1 || payload < 0 || HEADER + block + payload > length) {
            return false;
        }
        if (status == 1) {
            return payload <= BatchResultView.MAX_ERROR_BYTES && zeroTag(b, at + BatchResultDecoder.authTagEncodingOffset());
        }
        long tokens = i32(b, at + BatchResultDecoder.tokenCountEncodingOffset());
        long hidden = i32(b, at + BatchResultDecoder.hiddenSizeEncodingOffset());
        int type = u8(b, at + BatchResultDecoder.elementTypeEncodingOffset());
        if (tokens < 0 || tokens > 1 << 20 || hidden < 1 || hidden > 1 << 16 || type > 2) {
            return false;
        }
        return payload == tokens * hidden * (type == 0 ? 4 : 2)
                && zeroTag(b, at + BatchResultDecoder.authTagEncodingOffset());
    }

    /** The block length when the header says schema 7701, this template, version >= 2 and the block fits; else -1. */
    private static int headerBlock(UnsafeBuffer b, int offset, int length, int template, int minBlock) {
        if (length < HEADER) {
            return -1;
        }
        int block = u16(b, offset);
        if (u16(b, offset + 2) != template || u16(b, offset + 4) != 7701 || u16(b, offset + 6) < 2 || block < minBlock
                || HEADER + block > length) {
            return -1;
        }
        return block;
    }

    private static boolean zeroTag(UnsafeBuffer b, int at) {
        for (int i = 0; i < DataPlaneAuth.TAG_BYTES; i++) {
            if (b.getByte(at + i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static int u8(UnsafeBuffer b, int at) {
        return b.getByte(at) & 0xff;
    }

    private static int u16(UnsafeBuffer b, int at) {
        return b.getShort(at, ByteOrder.LITTLE_ENDIAN) & 0xffff;
    }

    private static long i32(UnsafeBuffer b, int at) {
        return b.getInt(at, ByteOrder.LITTLE_ENDIAN);
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }
}
