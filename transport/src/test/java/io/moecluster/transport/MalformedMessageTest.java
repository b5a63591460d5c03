package io.moecluster.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import io.moecluster.sbe.BatchResultEncoder;
import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderEncoder;
import io.moecluster.sbe.TokenBatchEncoder;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class MalformedMessageTest extends AeronFixture {
    private static final int TOKENS = 2;
    private static final int HIDDEN = 16;
    private static final int PAYLOAD = TOKENS * HIDDEN * 4;
    private static final int LENGTH = MessageHeaderEncoder.ENCODED_LENGTH + TokenBatchEncoder.BLOCK_LENGTH + PAYLOAD;

    /** A valid F32 TokenBatch of 2 x 16, then corrupted by the given edit. */
    private static UnsafeBuffer tokenBatch(Consumer<TokenBatchEncoder> corrupt, Consumer<MessageHeaderEncoder> corruptHeader) {
        UnsafeBuffer buf = new UnsafeBuffer(new byte[LENGTH]);
        MessageHeaderEncoder header = new MessageHeaderEncoder();
        TokenBatchEncoder enc = new TokenBatchEncoder().wrapAndApplyHeader(buf, 0, header)
                .batchId(1).layer(0).expertId(0).tokenCount(TOKENS).hiddenSize(HIDDEN)
                .elementType(ElementType.F32).hasWeights((short) 0).replyStreamId(2).senderId(3)
                .payloadLength(PAYLOAD);
        corrupt.accept(enc);
        corruptHeader.accept(header);
        return buf;
    }

    private record Case(String name, UnsafeBuffer buffer, int length, String kind) {
    }

    private static List<Case> cases() {
        return List.of(
                new Case("header cut", tokenBatch(e -> { }, h -> { }), 5, "truncated"),
                new Case("block cut", tokenBatch(e -> { }, h -> { }), 30, "truncated"),
                new Case("wrong template", tokenBatch(e -> { }, h -> h.templateId(99)), LENGTH, "bad-template"),
                new Case("wrong schema", tokenBatch(e -> { }, h -> h.schemaId(1234)), LENGTH, "bad-schema"),
                new Case("short block", tokenBatch(e -> { }, h -> h.blockLength(10)), LENGTH, "bad-block-length"),
                new Case("payload past buffer", tokenBatch(e -> e.payloadLength(1_000_000), h -> { }), LENGTH, "payload-length"),
                new Case("negative payload", tokenBatch(e -> e.payloadLength(-4), h -> { }), LENGTH, "payload-length"),
                new Case("payload vs dims", tokenBatch(e -> e.tokenCount(1), h -> { }), LENGTH, "payload-length"),
                new Case("payload missing weights", tokenBatch(e -> e.hasWeights((short) 1), h -> { }), LENGTH, "payload-length"),
                new Case("negative tokens", tokenBatch(e -> e.tokenCount(-1), h -> { }), LENGTH, "bad-dimension"),
                new Case("too many tokens", tokenBatch(e -> e.tokenCount((1 << 20) + 1), h -> { }), LENGTH, "bad-dimension"),
                new Case("hidden zero", tokenBatch(e -> e.hiddenSize(0), h -> { }), LENGTH, "bad-dimension"),
                new Case("hidden huge", tokenBatch(e -> e.hiddenSize(1 << 17), h -> { }), LENGTH, "bad-dimension"),
                new Case("element type", tokenBatch(e -> e.elementType(ElementType.NULL_VAL), h -> { }), LENGTH, "bad-element-type"),
                new Case("weights flag", tokenBatch(e -> e.hasWeights((short) 7), h -> { }), LENGTH, "bad-flag"));
    }

    @Test
    void validMessagePasses() throws MalformedMessageException {
        TokenBatchView view = new TokenBatchView().wrap(tokenBatch(e -> { }, h -> { }), 0, LENGTH);
        assertThat(view.tokenCount()).isEqualTo(TOKENS);
        assertThat(view.rowsBytes()).isEqualTo(PAYLOAD);
    }

    @Test
    void everyMalformedTokenBatchIsRejectedWithItsKind() {
        TokenBatchView view = new TokenBatchView();
        for (Case c : cases()) {
            assertThatThrownBy(() -> view.wrap(c.buffer(), 0, c.length()))
                    .as(c.name())
                    .isInstanceOfSatisfying(MalformedMessageException.class, e -> assertThat(e.kind()).as(c.name()).isEqualTo(c.kind()));
        }
    }

    @Test
    void malformedBatchResultsAreRejected() {
        UnsafeBuffer buf = new UnsafeBuffer(new byte[200]);
        new BatchResultEncoder().wrapAndApplyHeader(buf, 0, new MessageHeaderEncoder())
                .batchId(1).tokenCount(1).hiddenSize(8).elementType(ElementType.F32).status(BatchStatus.NULL_VAL)
                .payloadLength(32);
        int length = MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.BLOCK_LENGTH + 32;
        BatchResultView view = new BatchResultView();
        assertThatThrownBy(() -> view.wrap(buf, 0, length))
                .isInstanceOfSatisfying(MalformedMessageException.class, e -> assertThat(e.kind()).isEqualTo("bad-status"));
        new BatchResultEncoder().wrap(buf, MessageHeaderEncoder.ENCODED_LENGTH).status(BatchStatus.OK).payloadLength(31);
        assertThatThrownBy(() -> view.wrap(buf, 0, length))
                .isInstanceOfSatisfying(MalformedMessageException.class, e -> {
                    assertThat(e.kind()).isEqualTo("payload-length");
                    assertThat(e.getMessage()).contains("payloadLength 31", "expected 32");
                });
        // a TokenBatch is not a BatchResult
        assertThatThrownBy(() -> view.wrap(tokenBatch(e -> { }, h -> { }), 0, LENGTH))
                .isInstanceOfSatisfying(MalformedMessageException.class, e -> assertThat(e.kind()).isEqualTo("bad-template"));
    }

    /**
     * An enum byte outside the schema (found by fuzzing): the generated decoders throw
     * IllegalArgumentException for it; the views must report a malformed message of its kind.
     */
    @Test
    void enumBytesOutsideTheSchemaAreMalformedNotExceptions() {
        UnsafeBuffer batch = tokenBatch(e -> { }, h -> { });
        batch.putByte(MessageHeaderEncoder.ENCODED_LENGTH + TokenBatchEncoder.elementTypeEncodingOffset(), (byte) 160);
        assertThatThrownBy(() -> new TokenBatchView().wrap(batch, 0, LENGTH))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.kind()).isEqualTo("bad-element-type"));
        UnsafeBuffer result = new UnsafeBuffer(new byte[200]);
        new BatchResultEncoder().wrapAndApplyHeader(result, 0, new MessageHeaderEncoder())
                .batchId(1).tokenCount(1).hiddenSize(8).elementType(ElementType.F32).status(BatchStatus.OK)
                .payloadLength(32);
        int length = MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.BLOCK_LENGTH + 32;
        result.putByte(MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.statusEncodingOffset(), (byte) 7);
        assertThatThrownBy(() -> new BatchResultView().wrap(result, 0, length))
                .isInstanceOfSatisfying(MalformedMessageException.class, e -> assertThat(e.kind()).isEqualTo("bad-status"));
        result.putByte(MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.statusEncodingOffset(), (byte) 0);
        result.putByte(MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.elementTypeEncodingOffset(), (byte) 99);
        assertThatThrownBy(() -> new BatchResultView().wrap(result, 0, length))
                .isInstanceOfSatisfying(MalformedMessageException.class,
                        e -> assertThat(e.kind()).isEqualTo("bad-element-type"));
    }

    @Test
    void aMessageOfTheReleaseBeforeAuthenticationIsRefusedByVersion() {
        assertThatThrownBy(() -> new TokenBatchView().wrap(tokenBatch(e -> { }, h -> h.version(1)), 0, LENGTH))
                .isInstanceOfSatisfying(MalformedMessageException.class, e -> {
                    assertThat(e.kind()).isEqualTo("bad-version");
                    assertThat(e.getMessage()).contains("older release");
                });
    }

    @Test
    void pollerCountsMalformedMessagesAndKeepsGoing() {
        var sub = subscribe(IPC, 51);
        BoundedPublisher pub = publisher(IPC, 51);
        AtomicInteger good = new AtomicInteger();
        MessagePoller poller = new MessagePoller(sub).onTokenBatch(b -> good.incrementAndGet());
        List<Case> cases = cases();
        for (Case c : cases) {
            pub.offer(c.buffer(), 0, c.length());
        }
        UnsafeBuffer valid = tokenBatch(e -> { }, h -> { });
        pub.offer(valid, 0, LENGTH);
        pollUntil(poller, () -> good.get() == 1);
        MalformedMessageCounter counter = poller.counter();
        assertThat(counter.total()).isEqualTo(cases.size());
        for (Case c : cases) {
            long expected = cases.stream().filter(x -> x.kind().equals(c.kind())).count();
            assertThat(counter.count(c.kind())).as(c.name()).isEqualTo(expected);
        }
    }

    @Test
    void handlerFailuresAndUnhandledTemplatesAreCountedNotThrown() {
        var sub = subscribe(IPC, 52);
        BoundedPublisher pub = publisher(IPC, 52);
        MessagePoller poller = new MessagePoller(sub).onTokenBatch(b -> {
            throw new IllegalStateException("boom");
        });
        pub.offer(tokenBatch(e -> { }, h -> { }), 0, LENGTH);
        pub.offer(tokenBatch(e -> { }, h -> { }), 0, LENGTH);
        UnsafeBuffer result = new UnsafeBuffer(new byte[100]);
        new BatchResultEncoder().wrapAndApplyHeader(result, 0, new MessageHeaderEncoder())
                .status(BatchStatus.ERROR).payloadLength(0);
        pub.offer(result, 0, MessageHeaderEncoder.ENCODED_LENGTH + BatchResultEncoder.BLOCK_LENGTH);
        pollUntil(poller, () -> poller.counter().total() == 3);
        assertThat(poller.counter().count(MessagePoller.HANDLER_ERROR)).isEqualTo(2);
        assertThat(poller.counter().count(MessagePoller.NO_HANDLER)).isEqualTo(1);
    }
}
