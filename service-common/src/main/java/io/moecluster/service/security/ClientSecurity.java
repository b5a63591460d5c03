package io.moecluster.service.security;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.util.concurrent.Executor;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;

/**
 * How a client ({@code moe generate}, {@code chat}, {@code status}, {@code loadgen},
 * {@code scale}, {@code drain}, {@code autoscale}) reaches a cluster: plaintext, or TLS checked
 * against the system's trust store or a CA file, optionally with a client certificate (mutual
 * TLS, the operator role), and optionally a bearer token.
 *
 * @param tls whether to use TLS at all (implied by any of the files)
 * @param ca the CA certificates (PEM) to check the server against; null = the JDK's trust store
 * @param cert this client's certificate (PEM), with {@code key}; null = none
 * @param key the certificate's private key (PKCS #8 PEM)
 * @param token the bearer token sent with each call, or null
 * @param serverName the name to check the server's certificate for, when the address does not
 *     carry it (e.g. an IP address); null = the address's host
 */
public record ClientSecurity(boolean tls, Path ca, Path cert, Path key, String token, String serverName) {
    public ClientSecurity {
        if ((cert == null) != (key == null)) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together");
        }
        tls = tls || ca != null || cert != null;
        if (token != null && token.isBlank()) {
            token = null;
        }
    }

    /** Plaintext, no token. */
    public static ClientSecurity plaintext() {
        return new ClientSecurity(false, null, null, null, null, null);
    }

    /** A token from a file's first line. */
    public static String readToken(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8).strip().lines().findFirst().orElse("");
        } catch (IOException e) {
            throw new UncheckedIOException("--token-file: cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** A gRPC channel to {@code target} (host:port) with these settings. */
    public ManagedChannel channel(String target) {
        NettyChannelBuilder b = NettyChannelBuilder.forTarget(target, credentials());
        if (serverName != null) {
            b.overrideAuthority(serverName + target.substring(target.lastIndexOf(':')));
        }
        return b.build();
    }

    /** A gRPC channel to {@code host:port}. */
    public ManagedChannel channel(String host, int port) {
        return channel(host + ":" + port);
    }

    private ChannelCredentials credentials() {
        ChannelCredentials transport = InsecureChannelCredentials.create();
        if (tls) {
            try {
                TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
                if (ca != null) {
                    b.trustManager(ca.toFile());
                }
                if (cert != null) {
                    b.keyManager(cert.toFile(), key.toFile());
                }
                transport = b.build();
            } catch (IOException e) {
                throw new UncheckedIOException("--tls-ca/--tls-cert/--tls-key: " + e.getMessage(), e);
            }
        }
        if (token == null) {
            return transport;
        }
        return CompositeChannelCredentials.create(transport, new Bearer(token));
    }

    /** An SSL context for HTTPS clients ({@code moe chat}) with these settings. */
    public SSLContext sslContext() {
        try {
            TrustManager[] trust = null;
            if (ca != null) {
                AdvancedTlsX509TrustManager t = AdvancedTlsX509TrustManager.newBuilder()
                        .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_AND_HOST_NAME_VERIFICATION)
                        .build();
                t.updateTrustCredentials(ca.toFile());
                trust = new TrustManager[] {t};
            } else {
                TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                f.init((KeyStore) null);
                trust = f.getTrustManagers();
            }
            KeyManager[] keys = null;
            if (cert != null) {
                AdvancedTlsX509KeyManager k = new AdvancedTlsX509KeyManager();
                k.updateIdentityCredentials(cert.toFile(), key.toFile());
                keys = new KeyManager[] {k};
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys, trust, new SecureRandom());
            return context;
        } catch (IOException e) {
            throw new UncheckedIOException("--tls-ca/--tls-cert/--tls-key: " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("--tls-ca/--tls-cert/--tls-key: " + e.getMessage(), e);
        }
    }

    /** Sends {@code authorization: Bearer TOKEN} with every call (over TLS or not: the operator chose). */
    private static final class Bearer extends CallCredentials {
        private static final Metadata.Key<String> AUTHORIZATION =
                Metadata.Key.of(ServiceSecurity.AUTHORIZATION, Metadata.ASCII_STRING_MARSHALLER);
        private final String token;

        Bearer(String token) {
            this.token = token;
        }

        @Override
        public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
            Metadata m = new Metadata();
            m.put(AUTHORIZATION, "Bearer " + token);
            applier.apply(m);
        }
    }
}
