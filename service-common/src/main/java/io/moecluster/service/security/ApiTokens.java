package io.moecluster.service.security;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bearer tokens of the public API ({@code --api-tokens FILE}): one per line,
 * {@code NAME ROLE TOKEN}, where ROLE is {@code user} or {@code operator} and TOKEN is the token
 * itself or {@code sha256:HEX}, the SHA-256 of the token (so the file need not hold the secret);
 * {@code #} starts a comment. Only SHA-256 hashes are kept in memory and a presented token is
 * hashed before the lookup, so lookups reveal nothing about stored tokens through timing. The file
 * is read again when its modification time changes (checked at most once a second); a file that
 * no longer parses is logged and the previous tokens kept.
 */
public final class ApiTokens {
    private static final Logger LOG = LoggerFactory.getLogger(ApiTokens.class);
    /** The shortest token accepted in a file: 128 bits as hex. */
    public static final int MIN_TOKEN_CHARS = 32;
    private static final long RECHECK_NANOS = 1_000_000_000L;

    private final Path file;
    private volatile Map<String, Principal> byHash;
    private volatile FileTime loadedAt;
    private volatile long checkedAt;

    private ApiTokens(Path file) {
        this.file = file;
        this.byHash = parse(read(file), file.toString());
        this.loadedAt = modified(file);
        this.checkedAt = System.nanoTime();
    }

    /** Reads the file; fails naming the file and line when it does not parse. */
    public static ApiTokens load(Path file) {
        return new ApiTokens(file);
    }

    /** The caller a presented token belongs to, or null. */
    public Principal lookup(String token) {
        reloadIfChanged();
        return token == null || token.isEmpty() ? null : byHash.get(sha256Hex(token));
    }

    /** How many tokens are configured. */
    public int size() {
        return byHash.size();
    }

    public Path file() {
        return file;
    }

    private void reloadIfChanged() {
        long now = System.nanoTime();
        if (now - checkedAt < RECHECK_NANOS) {
            return;
        }
        synchronized (this) {
            if (now - checkedAt < RECHECK_NANOS) {
                return;
            }
            checkedAt = now;
            try {
                FileTime m = modified(file);
                if (!m.equals(loadedAt)) {
                    byHash = parse(read(file), file.toString());
                    loadedAt = m;
                    LOG.info("API tokens reloaded from {}: {} tokens", file, byHash.size());
                }
            } catch (RuntimeException e) {
                LOG.warn("API tokens file {} could not be reloaded, keeping the previous tokens: {}", file, e.getMessage());
            }
        }
    }

    static Map<String, Principal> parse(String text, String origin) {
        Map<String, Principal> out = new HashMap<>();
        String[] lines = text.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.split("\\s+");
            String where = origin + " line " + (i + 1);
            if (f.length != 3) {
                throw new IllegalArgumentException(where + ": expected NAME ROLE TOKEN (or sha256:HEX), got " + f.length
                        + " fields");
            }
            Role role;
            try {
                role = Role.parse(f[1]);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage());
            }
            String hash;
            if (f[2].startsWith("sha256:")) {
                hash = f[2].substring("sha256:".length()).toLowerCase(java.util.Locale.ROOT);
                if (!hash.matches("[0-9a-f]{64}")) {
                    throw new IllegalArgumentException(where + ": sha256: must be followed by 64 hex digits");
                }
            } else {
                if (f[2].length() < MIN_TOKEN_CHARS) {
                    throw new IllegalArgumentException(where + ": a token must have at least " + MIN_TOKEN_CHARS
                            + " characters (e.g. openssl rand -hex 32)");
                }
                hash = sha256Hex(f[2]);
            }
            if (out.put(hash, new Principal(f[0], role, "token")) != null) {
                throw new IllegalArgumentException(where + ": the same token is listed twice");
            }
        }
        return Map.copyOf(out);
    }

    /** The lowercase hex SHA-256 of a token's UTF-8 bytes, as a tokens file's {@code sha256:} form holds it. */
    public static String sha256Hex(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("--api-tokens: cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static FileTime modified(Path file) {
        try {
            return Files.getLastModifiedTime(file);
        } catch (IOException e) {
            throw new UncheckedIOException("--api-tokens: cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
