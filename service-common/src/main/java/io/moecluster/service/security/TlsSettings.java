package io.moecluster.service.security;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A service's TLS files ({@code --tls-cert}, {@code --tls-key}, {@code --tls-ca}): its certificate
 * chain and private key (PEM; the key in PKCS #8, as {@code openssl genpkey} writes it), which it
 * presents as a server and, to the services it calls, as a client; and the CA certificates (PEM)
 * that sign the cluster's certificates, which it checks its peers against: client certificates on
 * its ports (mutual TLS) and the certificates of the services it calls. All three are read again
 * when they change, every {@code reload} (new connections get the new ones).
 *
 * @param ca null: no client certificates are asked for, and servers are checked against the JDK's
 *     default trust store
 */
public record TlsSettings(Path cert, Path key, Path ca, Duration reload) {
    /** How often the files are checked for changes unless {@code --tls-reload-s} says otherwise. */
    public static final Duration DEFAULT_RELOAD = Duration.ofSeconds(60);

    public TlsSettings {
        if (cert == null || key == null) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together (a certificate and its key)");
        }
        requireFile("--tls-cert", cert);
        requireFile("--tls-key", key);
        if (ca != null) {
            requireFile("--tls-ca", ca);
        }
        if (reload == null) {
            reload = DEFAULT_RELOAD;
        }
        if (reload.isNegative() || reload.isZero()) {
            throw new IllegalArgumentException("--tls-reload-s must be positive, got " + reload.toSeconds());
        }
    }

    public TlsSettings(Path cert, Path key, Path ca) {
        this(cert, key, ca, DEFAULT_RELOAD);
    }

    /** The settings of flags that may all be absent: null when none is given. */
    public static TlsSettings of(Path cert, Path key, Path ca, Duration reload) {
        if (cert == null && key == null) {
            if (ca != null) {
                throw new IllegalArgumentException("--tls-ca needs --tls-cert and --tls-key (this service's own certificate)");
            }
            return null;
        }
        return new TlsSettings(cert, key, ca, reload);
    }

    private static void requireFile(String flag, Path file) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new IllegalArgumentException(flag + ": " + file + " is not a readable file");
        }
    }
}
