package io.moecluster.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.aeron.FragmentAssembler;
import io.aeron.Subscription;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.sbe.ElementType;
import io.moecluster.sbe.MessageHeaderDecoder;
import io.moecluster.sbe.TokenBatchDecoder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-plane authentication: what a service with the cluster secret accepts, and that a forged,
 * tampered, unsigned or wrongly keyed message never reaches a handler and is counted.
 */
class DataPlaneAuthTest extends AeronFixture {
    static final String SECRET = "0123456789abcdef0123456789abcdef";
    static final String OTHER = "fedcba9876543210fedcba9876543210";

    /** Sends one TokenBatch through {@code writer} and returns its bytes as they arrived. */
    private byte[] capture(DataPlaneAuth signer, int stream, int tokens, int hidden) {
        Subscription sub = subscribe(IPC, stream);
        TokenBatchWriter writer = new TokenBatchWriter(publisher(IPC, stream), signer);
        List<byte[]> got = new ArrayList<>();
        FragmentAssembler raw = new FragmentAssembler((buffer, offset, length, header) -> {
            byte[] copy = new byte[length];
            buffer.getBytes(offset, copy);
            got.add(copy);
        });
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rows = arena.allocate(4L * tokens * hidden);
            for (int i = 0; i < tokens * hidden; i++) {
                rows.setAtIndex(Kernels.F32, i, i * 0.25f);
            }
            float[] weights = halves(tokens);
            while (!sub.isConnected()) {
                Thread.onSpinWait();
            }
            writer.send(7, 1, 2, 3, 44, rows, 0, tokens, hidden, ElementType.F32, weights);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (got.isEmpty() && System.nanoTime() < deadline) {
                sub.poll(raw, 16);
            }
        }
        assertThat(got).hasSize(1);
        return got.get(0);
    }

    private static float[] halves(int n) {
        float[] w = new float[n];
        Arrays.fill(w, 0.5f);
        return w;
    }

    /** A poller fed by hand, and how many batches reached its handler. */
    private record Receiver(MessagePoller poller, AtomicInteger handled) {
        static Receiver of(DataPlaneAuth auth) {
            AtomicInteger handled = new AtomicInteger();
            MessagePoller p = new MessagePoller(null, new MalformedMessageCounter("test"), auth)
                    .onTokenBatch(b -> handled.incrementAndGet());
            return new Receiver(p, handled);
        }

        void feed(byte[] message) {
            poller.onMessage(new UnsafeBuffer(message), 0, message.length, null);
        }

        long unauthenticated() {
            return poller.counter().count(MalformedMessageException.UNAUTHENTICATED);
        }
    }

    @Test
    void aSignedBatchCrossesAeronAndIsAccepted() {
        DataPlaneAuth auth = DataPlaneAuth.fromText(SECRET, "test");
        Subscription sub = subscribe(IPC, 21);
        TokenBatchWriter writer = new TokenBatchWriter(publisher(IPC, 21), auth);
        AtomicInteger got = new AtomicInteger();
        MessagePoller poller = new MessagePoller(sub, auth).onTokenBatch(b -> {
            assertThat(b.replyStreamId()).isEqualTo(44);
            assertThat(b.weight(1)).isEqualTo(0.5f);
            got.incrementAndGet();
        });
        try (Arena arena = Arena.ofConfined()) {
            // 256 KiB of rows: fragmented by Aeron and reassembled before the tag is checked.
            MemorySegment rows = arena.allocate(4L * 64 * 1024);
            writer.send(1, 0, 0, 3, 44, rows, 0, 64, 1024, ElementType.F32, halves(64));
            writer.send(2, 0, 0, 3, 44, rows, 0, 2, 8, ElementType.F32, halves(2));
            pollUntil(poller, () -> got.get() == 2);
        }
        assertThat(poller.counter().total()).isZero();
        assertThat(auth.rejected()).isZero();
    }

    @Test
    void theTagIsHmacSha256OfTheMessageWithoutTheTagKeyedByTheDerivedKey() throws Exception {
        byte[] message = capture(DataPlaneAuth.fromText(SECRET, "test"), 22, 2, 8);
        int tag = TokenBatchView.TAG_OFFSET;
        Mac derive = Mac.getInstance("HmacSHA256");
        derive.init(new SecretKeySpec(SECRET.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        byte[] key = derive.doFinal("moe-cluster data plane v1".getBytes(StandardCharsets.US_ASCII));
        Mac hmac = Mac.getInstance("HmacSHA256");
        hmac.init(new SecretKeySpec(key, "HmacSHA256"));
        hmac.update(message, 0, tag);
        hmac.update(message, tag + 16, message.length - tag - 16);
        assertThat(Arrays.copyOfRange(message, tag, tag + 16)).isEqualTo(Arrays.copyOf(hmac.doFinal(), 16));
        assertThat(tag).isEqualTo(MessageHeaderDecoder.ENCODED_LENGTH + TokenBatchDecoder.BLOCK_LENGTH - 16);
    }

    @Test
    void aBatchSignedWithAnotherSecretIsDroppedAndCounted() {
        byte[] forged = capture(DataPlaneAuth.fromText(OTHER, "attacker"), 23, 2, 8);
        DataPlaneAuth auth = DataPlaneAuth.fromText(SECRET, "test");
        Receiver r = Receiver.of(auth);
        r.feed(forged);
        assertThat(r.handled()).hasValue(0);
        assertThat(r.unauthenticated()).isEqualTo(1);
        assertThat(auth.rejected()).isEqualTo(1);
    }

    @Test
    void anUnsignedBatchIsDroppedWhereASecretIsConfigured() {
        byte[] unsigned = capture(DataPlaneAuth.none(), 24, 2, 8);
        Receiver r = Receiver.of(DataPlaneAuth.fromText(SECRET, "test"));
        r.feed(unsigned);
        assertThat(r.handled()).hasValue(0);
        assertThat(r.unauthenticated()).isEqualTo(1);
        // ... and is accepted by a service without a secret, as before.
        Receiver open = Receiver.of(DataPlaneAuth.none());
        open.feed(unsigned);
        assertThat(open.handled()).hasValue(1);
    }

    @Test
    void aSignedBatchIsRefusedByAServiceWithoutASecret() {
        byte[] signed = capture(DataPlaneAuth.fromText(SECRET, "test"), 25, 2, 8);
        DataPlaneAuth none = DataPlaneAuth.none();
        Receiver r = Receiver.of(none);
        r.feed(signed);
        assertThat(r.handled()).hasValue(0);
        assertThat(r.unauthenticated()).isEqualTo(1);
        assertThat(none.rejected()).isEqualTo(1);
    }

    @Test
    void changingAnyByteOfASignedBatchMakesItUnauthenticated() {
        byte[] signed = capture(DataPlaneAuth.fromText(SECRET, "test"), 26, 2, 8);
        Receiver r = Receiver.of(DataPlaneAuth.fromText(SECRET, "test"));
        r.feed(signed);
        assertThat(r.handled()).hasValue(1);
        int replyStream = MessageHeaderDecoder.ENCODED_LENGTH + TokenBatchDecoder.replyStreamIdEncodingOffset();
        int sender = MessageHeaderDecoder.ENCODED_LENGTH + TokenBatchDecoder.senderIdEncodingOffset();
        int firstRow = MessageHeaderDecoder.ENCODED_LENGTH + TokenBatchDecoder.BLOCK_LENGTH;
        for (int at : new int[] {replyStream, sender, TokenBatchView.TAG_OFFSET, firstRow + 5, signed.length - 1}) {
            byte[] tampered = signed.clone();
            tampered[at] ^= 0x01;
            r.feed(tampered);
        }
        assertThat(r.handled()).as("only the untouched message").hasValue(1);
        assertThat(r.unauthenticated()).isEqualTo(5);
    }

    @Test
    void duringARolloverEverySecretVerifiesAndTheFirstSigns() {
        byte[] old = capture(DataPlaneAuth.fromText(OTHER, "old"), 27, 2, 8);
        DataPlaneAuth both = DataPlaneAuth.fromText(SECRET + "\n" + OTHER + "\n", "rolling");
        assertThat(both.secrets()).isEqualTo(2);
        Receiver r = Receiver.of(both);
        r.feed(old);
        r.feed(capture(both, 28, 2, 8));
        assertThat(r.handled()).hasValue(2);
        Receiver newOnly = Receiver.of(DataPlaneAuth.fromText(SECRET, "new"));
        newOnly.feed(capture(both, 29, 2, 8));
        assertThat(newOnly.handled()).as("signed with the first secret").hasValue(1);
    }

    @Test
    void signingAndVerifyingAllocateNothing() {
        DataPlaneAuth auth = DataPlaneAuth.fromText(SECRET + "\n" + OTHER, "test");
        MessageMac mac = auth.newMac();
        int length = 256 * 1024;
        UnsafeBuffer heap = new UnsafeBuffer(new byte[length]);
        UnsafeBuffer direct = new UnsafeBuffer(ByteBuffer.allocateDirect(length));
        UnsafeBuffer header = new UnsafeBuffer(new byte[TokenBatchView.TAG_OFFSET + 16]);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        for (int round = 0; round < 2; round++) {
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 200; i++) {
                mac.sign(header, header.capacity(), TokenBatchView.TAG_OFFSET, heap, 0, 8192);
                mac.sign(header, header.capacity(), TokenBatchView.TAG_OFFSET, direct, 0, length);
                heap.putBytes(TokenBatchView.TAG_OFFSET, header, TokenBatchView.TAG_OFFSET, 16);
                direct.putBytes(TokenBatchView.TAG_OFFSET, header, TokenBatchView.TAG_OFFSET, 16);
                mac.verify(heap, 0, length, TokenBatchView.TAG_OFFSET);
                mac.verify(direct, 0, length, TokenBatchView.TAG_OFFSET);
            }
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            if (round == 1) {
                // The second round runs what the first warmed up; 0 expected, a little slack for the JVM.
                assertThat(allocated).as("bytes allocated by 800 MACs of up to 256 KiB").isLessThan(1024);
            }
        }
    }

    @Test
    void secretsComeFromAFileOrTheEnvironmentAndShortOnesAreRefused(@TempDir Path dir) throws Exception {
        Path file = DataPlaneAuth.writeNewSecret(dir.resolve("secret"));
        assertThat(Files.readString(file).strip()).hasSize(64).matches("[0-9a-f]+");
        assertThat(Files.getPosixFilePermissions(file)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        assertThat(DataPlaneAuth.fromFile(file).enabled()).isTrue();
        assertThat(DataPlaneAuth.fromEnvironment(Map.of()).enabled()).isFalse();
        assertThat(DataPlaneAuth.fromEnvironment(Map.of(DataPlaneAuth.ENV_SECRET, SECRET)).enabled()).isTrue();
        assertThat(DataPlaneAuth.fromEnvironment(Map.of(DataPlaneAuth.ENV_SECRET_FILE, file.toString(),
                DataPlaneAuth.ENV_SECRET, "ignored-when-a-file-is-named")).describe()).contains(file.toString());
        assertThatThrownBy(() -> DataPlaneAuth.fromText("short", "x")).hasMessageContaining("at least 16 bytes");
        assertThatThrownBy(() -> DataPlaneAuth.fromText("\n \n", "x")).hasMessageContaining("no data-plane secret");
        assertThatThrownBy(() -> new TestSettings().dataPlaneSecretFile(dir.resolve("missing")).conclude())
                .hasMessageContaining("--data-plane-secret-file");
    }

    private static final class TestSettings extends DataPlaneSettings<TestSettings> {
        @Override
        protected void concludeSettings() {
        }
    }
}
