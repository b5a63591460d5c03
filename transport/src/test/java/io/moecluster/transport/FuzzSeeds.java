package io.moecluster.transport;

import io.moecluster.sbe.BatchResultEncoder;
import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderEncoder;
import io.moecluster.sbe.TokenBatchEncoder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Writes the seed inputs of {@link DataPlaneFuzzTest}: well-formed messages of every kind (each
 * element type, with and without weights, an empty batch, OK and ERROR results), as the writers
 * encode them. Run once when the schema changes:
 * {@code ./mvn25 -pl transport test -Dtest=FuzzSeeds -Dmoe.fuzz.writeSeeds=src/test/resources}.
 */
class FuzzSeeds {
    private static final int HEADER = MessageHeaderEncoder.ENCODED_LENGTH;

    @Test
    @EnabledIfSystemProperty(named = "moe.fuzz.writeSeeds", matches = ".+")
    void write() throws IOException {
        Path root = Path.of(System.getProperty("moe.fuzz.writeSeeds"))
                .resolve("io/moecluster/transport/DataPlaneFuzzTestInputs");
        int n = 0;
        for (ElementType type : new ElementType[] {ElementType.F32, ElementType.BF16, ElementType.F16}) {
            for (boolean weights : new boolean[] {false, true}) {
                byte[] b = tokenBatch(2, 3, type, weights);
                seed(root, "tokenBatchView", "seed-batch-" + type + (weights ? "-weights" : ""), b);
                seed(root, "messagePoller", "seed-batch-" + type + (weights ? "-weights" : ""), prefixed(n++, b));
                seed(root, "signedMessagePoller", "seed-batch-" + type + (weights ? "-weights" : ""), b);
            }
            byte[] r = batchResult(2, 3, type);
            seed(root, "batchResultView", "seed-result-" + type, r);
            seed(root, "messagePoller", "seed-result-" + type, prefixed(n++, r));
            seed(root, "signedMessagePoller", "seed-result-" + type, r);
        }
        byte[] empty = tokenBatch(0, 1, ElementType.F32, true);
        seed(root, "tokenBatchView", "seed-batch-empty", empty);
        seed(root, "messagePoller", "seed-batch-empty", prefixed(3, empty));
        byte[] error = batchError("expert 9 of layer 1 is not hosted here");
        seed(root, "batchResultView", "seed-result-error", error);
        seed(root, "messagePoller", "seed-result-error", prefixed(5, error));
        seed(root, "signedMessagePoller", "seed-result-error", error);
    }

    /** The poller target's first byte picks the offset (low 4 bits) and trailing bytes (next 3). */
    private static byte[] prefixed(int selector, byte[] message) {
        byte[] out = new byte[message.length + 1];
        out[0] = (byte) ((selector * 37) & 0x7f);
        System.arraycopy(message, 0, out, 1, message.length);
        return out;
    }

    static byte[] tokenBatch(int tokens, int hidden, ElementType type, boolean weights) {
        int rows = tokens * hidden * TokenRows.elementBytes(type);
        int payload = rows + (weights ? 4 * tokens : 0);
        UnsafeBuffer buf = new UnsafeBuffer(new byte[HEADER + TokenBatchEncoder.BLOCK_LENGTH + payload]);
        new TokenBatchEncoder().wrapAndApplyHeader(buf, 0, new MessageHeaderEncoder())
                .batchId(41).layer(1).expertId(2).tokenCount(tokens).hiddenSize(hidden).elementType(type)
                .hasWeights((short) (weights ? 1 : 0)).replyStreamId(1001).senderId(0).payloadLength(payload);
        for (int i = 0; i < payload; i++) {
            buf.putByte(HEADER + TokenBatchEncoder.BLOCK_LENGTH + i, (byte) (i * 7 + 1));
        }
        return buf.byteArray();
    }

    static byte[] batchResult(int tokens, int hidden, ElementType type) {
        int payload = tokens * hidden * TokenRows.elementBytes(type);
        UnsafeBuffer buf = new UnsafeBuffer(new byte[HEADER + BatchResultEncoder.BLOCK_LENGTH + payload]);
        new BatchResultEncoder().wrapAndApplyHeader(buf, 0, new MessageHeaderEncoder())
                .batchId(41).layer(1).expertId(2).tokenCount(tokens).hiddenSize(hidden).elementType(type)
                .status(BatchStatus.OK).senderId(100).payloadLength(payload);
        return buf.byteArray();
    }

    static byte[] batchError(String message) {
        byte[] text = message.getBytes(StandardCharsets.UTF_8);
        UnsafeBuffer buf = new UnsafeBuffer(new byte[HEADER + BatchResultEncoder.BLOCK_LENGTH + text.length]);
        new BatchResultEncoder().wrapAndApplyHeader(buf, 0, new MessageHeaderEncoder())
                .batchId(41).layer(1).expertId(9).elementType(ElementType.F32).status(BatchStatus.ERROR).senderId(100)
                .payloadLength(text.length);
        buf.putBytes(HEADER + BatchResultEncoder.BLOCK_LENGTH, text);
        return buf.byteArray();
    }

    private static void seed(Path root, String target, String name, byte[] data) throws IOException {
        Path dir = Files.createDirectories(root.resolve(target));
        Files.write(dir.resolve(name), Arrays.copyOf(data, data.length));
    }
}
