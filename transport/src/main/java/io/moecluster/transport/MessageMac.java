package io.moecluster.transport;

import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.concurrent.atomic.LongAdder;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Signs and verifies data-plane messages for one thread: HMAC-SHA256 (RFC 2104) over a message
 * with its tag field left out, truncated to {@link DataPlaneAuth#TAG_BYTES}. Built on
 * {@link MessageDigest} with caller-owned output arrays, so neither signing nor verifying
 * allocates: the JDK's SHA-256 (a CPU intrinsic where the CPU has SHA extensions) reads heap
 * buffers in place and off-heap ones through one reusable chunk. Without keys it writes and
 * expects an all-zero tag. Not thread-safe.
 */
public final class MessageMac {
    private static final int BLOCK = 64;
    private static final int DIGEST = 32;
    private static final int CHUNK = 16 * 1024;
    /** Without a secret; stateless, so shared (by the views' unauthenticated {@code wrap}). */
    static final MessageMac UNSIGNED = new MessageMac(new byte[0][], new LongAdder());

    private final byte[][] innerPads;
    private final byte[][] outerPads;
    private final LongAdder rejected;
    private final MessageDigest sha;
    private final byte[] inner = new byte[DIGEST];
    private final byte[] outer = new byte[DIGEST];
    private final byte[] chunk;

    MessageMac(byte[][] keys, LongAdder rejected) {
        this.rejected = rejected;
        this.innerPads = new byte[keys.length][];
        this.outerPads = new byte[keys.length][];
        for (int k = 0; k < keys.length; k++) {
            // Keys are derived 32-byte values: shorter than a block, so they are padded, not hashed.
            innerPads[k] = new byte[BLOCK];
            outerPads[k] = new byte[BLOCK];
            for (int i = 0; i < BLOCK; i++) {
                byte b = i < keys[k].length ? keys[k][i] : 0;
                innerPads[k][i] = (byte) (b ^ 0x36);
                outerPads[k][i] = (byte) (b ^ 0x5c);
            }
        }
        try {
            this.sha = keys.length == 0 ? null : MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available in this JDK", e);
        }
        this.chunk = keys.length == 0 ? null : new byte[CHUNK];
    }

    /** Whether this signs and checks (the service has a secret). */
    public boolean enabled() {
        return innerPads.length > 0;
    }

    /**
     * Writes the tag of the message {@code header[0, headerLength)} + {@code payload[pOff, pOff + pLen)}
     * into the header at {@code tagOffset} (zeros without a secret).
     */
    public void sign(MutableDirectBuffer header, int headerLength, int tagOffset, DirectBuffer payload, int pOff,
                     int pLen) {
        if (!enabled()) {
            header.setMemory(tagOffset, DataPlaneAuth.TAG_BYTES, (byte) 0);
            return;
        }
        begin(0);
        feed(header, 0, tagOffset);
        int afterTag = tagOffset + DataPlaneAuth.TAG_BYTES;
        feed(header, afterTag, headerLength - afterTag);
        feed(payload, pOff, pLen);
        finish(0);
        header.putBytes(tagOffset, outer, 0, DataPlaneAuth.TAG_BYTES);
    }

    /**
     * Whether the message {@code buffer[offset, offset + length)} carries a valid tag at
     * {@code offset + tagOffset}; a failure is counted. Without a secret: whether the tag is all zero.
     */
    public boolean verify(DirectBuffer buffer, int offset, int length, int tagOffset) {
        int tagAt = offset + tagOffset;
        if (!enabled()) {
            int bits = 0;
            for (int i = 0; i < DataPlaneAuth.TAG_BYTES; i++) {
                bits |= buffer.getByte(tagAt + i);
            }
            if (bits != 0) {
                rejected.increment();
                return false;
            }
            return true;
        }
        int afterTag = tagOffset + DataPlaneAuth.TAG_BYTES;
        for (int k = 0; k < innerPads.length; k++) {
            begin(k);
            feed(buffer, offset, tagOffset);
            feed(buffer, offset + afterTag, length - afterTag);
            finish(k);
            int diff = 0;
            for (int i = 0; i < DataPlaneAuth.TAG_BYTES; i++) {
                diff |= outer[i] ^ buffer.getByte(tagAt + i);
            }
            if (diff == 0) {
                return true;
            }
        }
        rejected.increment();
        return false;
    }

    private void begin(int key) {
        sha.reset();
        sha.update(innerPads[key], 0, BLOCK);
    }

    private void finish(int key) {
        try {
            sha.digest(inner, 0, DIGEST);
            sha.update(outerPads[key], 0, BLOCK);
            sha.update(inner, 0, DIGEST);
            sha.digest(outer, 0, DIGEST);
        } catch (DigestException e) {
            throw new IllegalStateException(e);
        }
    }

    private void feed(DirectBuffer b, int index, int length) {
        if (length <= 0) {
            return;
        }
        byte[] array = b.byteArray();
        if (array != null) {
            sha.update(array, b.wrapAdjustment() + index, length);
            return;
        }
        for (int done = 0; done < length; ) {
            int n = Math.min(CHUNK, length - done);
            b.getBytes(index + done, chunk, 0, n);
            sha.update(chunk, 0, n);
            done += n;
        }
    }
}
