package io.moecluster.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.moecluster.core.kernels.Bf16;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.BatchStatus;
import io.moecluster.sbe.ElementType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class TokenBatchRoundTripTest extends AeronFixture {
    private static MemorySegment randomRows(Arena arena, int n, long seed) {
        MemorySegment seg = arena.allocate(4L * n, 64);
        Random r = new Random(seed);
        for (int i = 0; i < n; i++) {
            seg.setAtIndex(Kernels.F32, i, (float) r.nextGaussian() * 3f);
        }
        return seg;
    }

    /** Sends one batch and returns the rows received, widened to f32. */
    private MemorySegment roundTrip(Arena arena, MemorySegment rows, int tokens, int hidden, ElementType type,
                                    float[] weights, float[] weightsOut) {
        var sub = subscribe(IPC, 11);
        var writer = new TokenBatchWriter(publisher(IPC, 11));
        MemorySegment out = arena.allocate(4L * tokens * hidden);
        AtomicInteger got = new AtomicInteger();
        MessagePoller poller = new MessagePoller(sub).onTokenBatch(b -> {
            assertThat(b.batchId()).isEqualTo(42L);
            assertThat(b.layer()).isEqualTo(3);
            assertThat(b.expertId()).isEqualTo(7);
            assertThat(b.senderId()).isEqualTo(5);
            assertThat(b.replyStreamId()).isEqualTo(12);
            assertThat(b.tokenCount()).isEqualTo(tokens);
            assertThat(b.hiddenSize()).isEqualTo(hidden);
            assertThat(b.elementType()).isEqualTo(type);
            assertThat(b.traceIdHigh()).isEqualTo(0x1111L);
            assertThat(b.traceIdLow()).isEqualTo(0x2222L);
            assertThat(b.spanId()).isEqualTo(0x3333L);
            assertThat(b.traceFlags()).isEqualTo(1);
            assertThat(b.hasWeights()).isEqualTo(weights != null);
            b.copyRowsTo(out, 0);
            if (weights != null) {
                for (int t = 0; t < tokens; t++) {
                    weightsOut[t] = b.weight(t);
                }
            }
            got.incrementAndGet();
        });
        writer.trace(0x1111L, 0x2222L, 0x3333L, 1);
        if (weights == null) {
            writer.send(42, 3, 7, 5, 12, rows, 0, tokens, hidden, type);
        } else {
            writer.send(42, 3, 7, 5, 12, rows, 0, tokens, hidden, type, weights);
        }
        pollUntil(poller, () -> got.get() == 1);
        assertThat(poller.counter().total()).isZero();
        return out;
    }

    private static void assertExact(MemorySegment expected, MemorySegment actual, int n) {
        for (int i = 0; i < n; i++) {
            assertThat(actual.getAtIndex(Kernels.F32, i)).as("float %d", i).isEqualTo(expected.getAtIndex(Kernels.F32, i));
        }
    }

    @Test
    void f32RoundTripOf8KiBIsExact() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rows = randomRows(arena, 2 * 1024, 1);
            assertExact(rows, roundTrip(arena, rows, 2, 1024, ElementType.F32, null, null), 2 * 1024);
        }
    }

    @Test
    void f32RoundTripOf256KiBIsExact() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rows = randomRows(arena, 64 * 1024, 2);
            assertExact(rows, roundTrip(arena, rows, 64, 1024, ElementType.F32, null, null), 64 * 1024);
        }
    }

    @Test
    void f32RoundTripOf4MiBIsFragmentedAndExact() {
        try (Arena arena = Arena.ofConfined()) {
            int tokens = 1024;
            int hidden = 1024;
            MemorySegment rows = randomRows(arena, tokens * hidden, 3);
            float[] weights = new float[tokens];
            for (int t = 0; t < tokens; t++) {
                weights[t] = t / 1024f;
            }
            float[] weightsOut = new float[tokens];
            assertExact(rows, roundTrip(arena, rows, tokens, hidden, ElementType.F32, weights, weightsOut), tokens * hidden);
            assertThat(weightsOut).containsExactly(weights);
        }
    }

    @Test
    void bf16RoundTripIsWithinBf16Rounding() {
        try (Arena arena = Arena.ofConfined()) {
            int n = 64 * 1024;
            MemorySegment rows = randomRows(arena, n, 4);
            MemorySegment out = roundTrip(arena, rows, 64, 1024, ElementType.BF16, null, null);
            for (int i = 0; i < n; i++) {
                float x = rows.getAtIndex(Kernels.F32, i);
                float y = out.getAtIndex(Kernels.F32, i);
                assertThat(y).isEqualTo(Bf16.toFloat(Bf16.fromFloat(x)));
                // bf16 keeps 8 significant bits: relative error at most 2^-8 after round to nearest
                assertThat(y).isCloseTo(x, within(Math.abs(x) * 0x1p-8f + 1e-30f));
            }
        }
    }

    @Test
    void f16RoundTripWidensWithFloat16() {
        try (Arena arena = Arena.ofConfined()) {
            int n = 2 * 256;
            MemorySegment rows = randomRows(arena, n, 5);
            MemorySegment out = roundTrip(arena, rows, 2, 256, ElementType.F16, null, null);
            for (int i = 0; i < n; i++) {
                float x = rows.getAtIndex(Kernels.F32, i);
                assertThat(out.getAtIndex(Kernels.F32, i)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(x)));
            }
        }
    }

    @Test
    void weightsFromASegmentRoundTrip() {
        try (Arena arena = Arena.ofConfined()) {
            var sub = subscribe(IPC, 21);
            var writer = new TokenBatchWriter(publisher(IPC, 21));
            MemorySegment rows = randomRows(arena, 4 * 8, 6);
            MemorySegment weights = randomRows(arena, 10, 7);
            float[] seen = new float[4];
            AtomicInteger got = new AtomicInteger();
            MessagePoller poller = new MessagePoller(sub).onTokenBatch(b -> {
                for (int t = 0; t < 4; t++) {
                    seen[t] = b.weight(t);
                }
                assertThat(b.payloadLength()).isEqualTo(4 * 8 * 4 + 4 * 4);
                got.incrementAndGet();
            });
            writer.send(1, 0, -1, 1, 2, rows, 0, 4, 8, ElementType.F32, weights, 6);
            pollUntil(poller, () -> got.get() == 1);
            for (int t = 0; t < 4; t++) {
                assertThat(seen[t]).isEqualTo(weights.getAtIndex(Kernels.F32, 6 + t));
            }
        }
    }

    @Test
    void batchResultOkAndErrorRoundTrip() {
        try (Arena arena = Arena.ofConfined()) {
            var sub = subscribe(IPC, 31);
            var writer = new BatchResultWriter(publisher(IPC, 31));
            MemorySegment rows = randomRows(arena, 8 * 512, 8);
            MemorySegment out = arena.allocate(4L * 8 * 512);
            String[] error = new String[1];
            AtomicInteger got = new AtomicInteger();
            MessagePoller poller = new MessagePoller(sub).onBatchResult(r -> {
                if (r.isOk()) {
                    assertThat(r.batchId()).isEqualTo(9L);
                    assertThat(r.layer()).isEqualTo(2);
                    assertThat(r.expertId()).isEqualTo(63);
                    assertThat(r.senderId()).isEqualTo(4);
                    assertThat(r.tokenCount()).isEqualTo(8);
                    assertThat(r.hiddenSize()).isEqualTo(512);
                    assertThat(r.spanId()).isEqualTo(77L);
                    r.copyRowsTo(out, 0);
                } else {
                    assertThat(r.status()).isEqualTo(BatchStatus.ERROR);
                    assertThat(r.batchId()).isEqualTo(10L);
                    assertThat(r.spanId()).isZero();
                    error[0] = r.errorMessage();
                }
                got.incrementAndGet();
            });
            writer.trace(1, 2, 77, 1).sendRows(9, 2, 63, 4, rows, 0, 8, 512, ElementType.F32);
            writer.sendError(10, 2, 63, 4, "expert 63 ran out of memory — ünïcödé");
            pollUntil(poller, () -> got.get() == 2);
            assertExact(rows, out, 8 * 512);
            assertThat(error[0]).isEqualTo("expert 63 ran out of memory — ünïcödé");
        }
    }

    @Test
    void udpLoopbackRoundTrip() throws Exception {
        int port;
        try (var socket = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }
        String channel = "aeron:udp?endpoint=127.0.0.1:" + port;
        try (Arena arena = Arena.ofConfined()) {
            var sub = subscribe(channel, 41);
            var writer = new TokenBatchWriter(publisher(channel, 41));
            MemorySegment rows = randomRows(arena, 16 * 1024, 9);
            MemorySegment out = arena.allocate(4L * 16 * 1024);
            AtomicInteger got = new AtomicInteger();
            MessagePoller poller = new MessagePoller(sub).onTokenBatch(b -> {
                b.copyRowsTo(out, 0);
                got.incrementAndGet();
            });
            writer.send(5, 1, 0, 1, 42, rows, 0, 16, 1024, ElementType.F32);
            pollUntil(poller, () -> got.get() == 1);
            assertExact(rows, out, 16 * 1024);
        }
    }
}
