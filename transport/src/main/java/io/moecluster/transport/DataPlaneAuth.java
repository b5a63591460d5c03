package io.moecluster.transport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The data-plane authentication of one service: the cluster secret's keys, which sign every
 * TokenBatch and BatchResult it sends and verify every one it receives, and the count of
 * messages it dropped because their tag did not verify.
 *
 * <p>The tag is HMAC-SHA256 truncated to 128 bits over the whole message except the tag (SBE
 * header, block, payload), in the message's {@code authTag} field. The HMAC key is derived from
 * the secret (HMAC-SHA256(secret, "moe-cluster data plane v1")), so the secret itself never keys
 * anything directly. A secret may list several secrets, one per line: the first signs, all
 * verify, which lets a cluster roll to a new secret without a stop (README, Security).
 *
 * <p>Without a secret ({@link #none()}) messages go unsigned (tag all zero) and a signed message
 * is refused: a cluster whose services disagree about the secret fails loudly instead of half
 * working. One instance per service; {@link #newMac()} gives each sending or polling thread its
 * own (not thread-safe) {@link MessageMac}.
 */
public final class DataPlaneAuth {
    /** The environment variable naming a secret file (what {@code moe up} and the manifests set). */
    public static final String ENV_SECRET_FILE = "MOE_DATA_PLANE_SECRET_FILE";
    /** The environment variable holding the secret itself (the file is preferred). */
    public static final String ENV_SECRET = "MOE_DATA_PLANE_SECRET";
    /** Bytes of the truncated tag in each message. */
    public static final int TAG_BYTES = 16;
    /** The shortest secret accepted: 128 bits of text is the least a cluster key should have. */
    public static final int MIN_SECRET_BYTES = 16;
    private static final byte[] KEY_LABEL = "moe-cluster data plane v1".getBytes(StandardCharsets.US_ASCII);

    private final byte[][] keys;
    private final String origin;
    private final LongAdder rejected = new LongAdder();

    private DataPlaneAuth(byte[][] keys, String origin) {
        this.keys = keys;
        this.origin = origin;
    }

    /** No secret: messages are sent unsigned and signed ones refused. */
    public static DataPlaneAuth none() {
        return new DataPlaneAuth(new byte[0][], "none");
    }

    /**
     * The secrets in {@code text}, one per non-empty line (surrounding white space ignored), the
     * first signing; {@code origin} names where they came from in errors and logs.
     */
    public static DataPlaneAuth fromText(String text, String origin) {
        List<byte[]> keys = new ArrayList<>();
        for (String line : text.split("\n")) {
            String secret = line.strip();
            if (secret.isEmpty()) {
                continue;
            }
            byte[] bytes = secret.getBytes(StandardCharsets.UTF_8);
            if (bytes.length < MIN_SECRET_BYTES) {
                throw new IllegalArgumentException(origin + ": a data-plane secret must have at least " + MIN_SECRET_BYTES
                        + " bytes, got " + bytes.length + " (make one with: openssl rand -hex 32)");
            }
            keys.add(derive(bytes));
        }
        if (keys.isEmpty()) {
            throw new IllegalArgumentException(origin + ": no data-plane secret in it");
        }
        return new DataPlaneAuth(keys.toArray(byte[][]::new), origin);
    }

    /** The secrets of a file, as {@link #fromText}. */
    public static DataPlaneAuth fromFile(Path file) {
        try {
            return fromText(Files.readString(file, StandardCharsets.UTF_8), "data-plane secret file " + file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the data-plane secret file " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * From {@code $MOE_DATA_PLANE_SECRET_FILE}, else {@code $MOE_DATA_PLANE_SECRET}, else none.
     */
    public static DataPlaneAuth fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    static DataPlaneAuth fromEnvironment(Map<String, String> env) {
        String file = env.get(ENV_SECRET_FILE);
        if (file != null && !file.isBlank()) {
            return fromFile(Path.of(file));
        }
        String secret = env.get(ENV_SECRET);
        if (secret != null && !secret.isBlank()) {
            return fromText(secret, "$" + ENV_SECRET);
        }
        return none();
    }

    /** A new random secret: 32 bytes from {@link SecureRandom}, as 64 hex digits. */
    public static String newSecret() {
        byte[] bytes = new byte[32];
        new SecureRandom().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /** Writes a new random secret to {@code file}, readable by its owner only where the file system has POSIX modes. */
    public static Path writeNewSecret(Path file) {
        try {
            Files.deleteIfExists(file);
            try {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (UnsupportedOperationException notPosix) {
                Files.createFile(file);
            }
            Files.writeString(file, newSecret() + "\n", StandardCharsets.UTF_8, StandardOpenOption.TRUNCATE_EXISTING);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a data-plane secret to " + file + ": " + e.getMessage(), e);
        }
    }

    private static byte[] derive(byte[] secret) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            return mac.doFinal(KEY_LABEL);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JDK", e);
        }
    }

    /** Whether messages are signed and checked (a secret is configured). */
    public boolean enabled() {
        return keys.length > 0;
    }

    /** How many secrets verify (the first also signs); 0 without a secret. */
    public int secrets() {
        return keys.length;
    }

    /** A signer and verifier for one thread. */
    public MessageMac newMac() {
        return new MessageMac(keys, rejected);
    }

    /** Messages this service dropped because their tag did not verify (or was present without a secret). */
    public long rejected() {
        return rejected.sum();
    }

    /** One line for the start-up log. */
    public String describe() {
        return enabled()
                ? "data-plane messages authenticated with HMAC-SHA256/128 (" + origin + (keys.length > 1 ? ", "
                        + keys.length + " secrets: the first signs, all verify" : "") + ")"
                : "data-plane messages NOT authenticated: no secret (set --data-plane-secret-file or $" + ENV_SECRET_FILE
                        + "; README, Security)";
    }

    @Override
    public String toString() {
        return "DataPlaneAuth[" + (enabled() ? origin + ", " + keys.length + " secret(s)" : "none") + "]";
    }
}
