package io.moecluster.cuda.bindings;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * The 128 bytes of an {@code ncclUniqueId}: made by one rank ({@code ncclGetUniqueId}) and given to
 * every rank of the communicator. As text (the cluster file, a Consul KV value) it is 256 lower-case
 * hex digits.
 */
public record NcclUniqueId(byte[] bytes) {
    public static final int BYTES = 128;

    public NcclUniqueId {
        if (bytes.length != BYTES) {
            throw new IllegalArgumentException("an ncclUniqueId is " + BYTES + " bytes, got " + bytes.length);
        }
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    public String toHex() {
        return HexFormat.of().formatHex(bytes);
    }

    /** From {@link #toHex()}; anything but 256 hex digits is refused. */
    public static NcclUniqueId fromHex(String hex) {
        String h = hex.strip();
        if (h.length() != 2 * BYTES) {
            throw new IllegalArgumentException("an ncclUniqueId is " + 2 * BYTES + " hex digits, got " + h.length());
        }
        try {
            return new NcclUniqueId(HexFormat.of().parseHex(h));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("an ncclUniqueId is hex digits: " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NcclUniqueId other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
        return "ncclUniqueId(" + toHex().substring(0, 16) + "...)";
    }
}
