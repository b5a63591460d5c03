package io.moecluster.service.security;

import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TLS material of one service, kept current: its certificate and key, and the cluster CA,
 * re-read when a file's modification time or size changes (checked every
 * {@link TlsSettings#reload()} on a daemon thread) into gRPC's {@code AdvancedTls} managers, which
 * every handshake consults. New connections use what was read last;
 * open ones keep theirs. The same managers serve the gRPC servers, the HTTP API and the
 * service's own gRPC clients.
 */
public final class ServiceTls implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ServiceTls.class);
    private final TlsSettings settings;
    private final AdvancedTlsX509KeyManager keys = new AdvancedTlsX509KeyManager();
    private final AdvancedTlsX509TrustManager clientChecks;
    private final AdvancedTlsX509TrustManager serverChecks;
    private final ScheduledExecutorService reloader;
    private final AtomicLong reloads = new AtomicLong();
    private volatile List<Object> loaded;
    private volatile X509TrustManager caTrust;

    private ServiceTls(TlsSettings settings) throws IOException, GeneralSecurityException {
        this.settings = settings;
        // Client certificates: the chain to the CA is what counts (a client has no host name to match).
        clientChecks = AdvancedTlsX509TrustManager.newBuilder()
                .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION).build();
        // Servers this service calls: the chain, and their name or address in the certificate.
        serverChecks = AdvancedTlsX509TrustManager.newBuilder()
                .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_AND_HOST_NAME_VERIFICATION)
                .build();
        if (settings.ca() == null) {
            serverChecks.useSystemDefaultTrustCerts();
        }
        this.loaded = stamp();
        load();
        this.reloader = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "tls-reload");
            t.setDaemon(true);
            return t;
        });
        long period = settings.reload().toMillis();
        reloader.scheduleWithFixedDelay(this::reloadIfChanged, period, period, TimeUnit.MILLISECONDS);
    }

    private void load() throws IOException, GeneralSecurityException {
        keys.updateIdentityCredentials(settings.cert().toFile(), settings.key().toFile());
        if (settings.ca() != null) {
            clientChecks.updateTrustCredentials(settings.ca().toFile());
            serverChecks.updateTrustCredentials(settings.ca().toFile());
            caTrust = plainTrust(settings.ca());
        }
    }

    /** The JDK's PKIX checks over the CA file: what {@link #trustsClient} uses outside a handshake. */
    private static X509TrustManager plainTrust(Path ca) throws IOException, GeneralSecurityException {
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        try (InputStream in = Files.newInputStream(ca)) {
            int i = 0;
            for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("ca-" + i++, c);
            }
        }
        TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        f.init(store);
        for (TrustManager t : f.getTrustManagers()) {
            if (t instanceof X509TrustManager x) {
                return x;
            }
        }
        throw new GeneralSecurityException("no X509TrustManager for " + ca);
    }

    /** Modification times and sizes of the files: what a change is noticed by. */
    private List<Object> stamp() {
        List<Object> s = new ArrayList<>();
        for (Path p : new Path[] {settings.cert(), settings.key(), settings.ca()}) {
            if (p != null) {
                try {
                    s.add(Files.getLastModifiedTime(p));
                    s.add(Files.size(p));
                } catch (IOException e) {
                    s.add(e.getClass().getName());
                }
            }
        }
        return s;
    }

    /** Re-reads the files after a change; a half-written or broken set is logged and the previous one kept. */
    private void reloadIfChanged() {
        List<Object> now = stamp();
        if (now.equals(loaded)) {
            return;
        }
        try {
            load();
            loaded = now;
            reloads.incrementAndGet();
            LOG.info("TLS certificate {} (key {}{}) reloaded", settings.cert(), settings.key(),
                    settings.ca() == null ? "" : ", CA " + settings.ca());
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            // Tried again at the next check: a renewal that writes the files one by one settles.
            LOG.warn("TLS files {} / {} changed but could not be read, keeping the previous ones: {}", settings.cert(),
                    settings.key(), e.toString());
        }
    }

    /** How many times the files were read again after a change. */
    public long reloads() {
        return reloads.get();
    }

    /** Reads the files (failing naming them when they do not parse) and starts watching them. */
    public static ServiceTls load(TlsSettings settings) {
        try {
            return new ServiceTls(settings);
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException("--tls-cert/--tls-key/--tls-ca (" + settings.cert() + ", " + settings.key()
                    + (settings.ca() == null ? "" : ", " + settings.ca()) + "): " + e.getMessage()
                    + " (PEM certificates; the key as PKCS #8 PEM, e.g. openssl genpkey)", e);
        }
    }

    public TlsSettings settings() {
        return settings;
    }

    /** Whether client certificates are checked (a CA is configured): mutual TLS is possible. */
    public boolean verifiesClients() {
        return settings.ca() != null;
    }

    /**
     * A gRPC server's credentials: this service's certificate, and client certificates checked
     * against the CA, {@code required} (internal services) or optional (the public API: callers
     * may authenticate with a token instead). Without a CA no client certificate is asked for.
     */
    public ServerCredentials serverCredentials(boolean required) {
        TlsServerCredentials.Builder b = TlsServerCredentials.newBuilder().keyManager(keys);
        if (verifiesClients()) {
            b.trustManager(clientChecks).clientAuth(required ? TlsServerCredentials.ClientAuth.REQUIRE
                    : TlsServerCredentials.ClientAuth.OPTIONAL);
        }
        return b.build();
    }

    /** A gRPC client's credentials for calls to other services: this service's certificate, servers checked against the CA. */
    public ChannelCredentials channelCredentials() {
        return TlsChannelCredentials.newBuilder().keyManager(keys).trustManager(serverChecks).build();
    }

    /** Whether a client's certificate chain verifies against the CA (false without a CA). */
    public boolean trustsClient(java.security.cert.Certificate[] chain) {
        if (!verifiesClients()) {
            return false;
        }
        X509Certificate[] x = new X509Certificate[chain.length];
        for (int i = 0; i < chain.length; i++) {
            if (!(chain[i] instanceof X509Certificate c)) {
                return false;
            }
            x[i] = c;
        }
        try {
            caTrust.checkClientTrusted(x, "UNKNOWN");
            return true;
        } catch (java.security.cert.CertificateException e) {
            return false;
        }
    }

    /** This service's certificate and key, current (for the HTTP API's server). */
    public X509ExtendedKeyManager keyManager() {
        return keys;
    }

    /** Checks client certificates against the CA (for the HTTP API's server); only with a CA. */
    public X509ExtendedTrustManager clientCertificateTrust() {
        return clientChecks;
    }

    @Override
    public void close() {
        reloader.shutdownNow();
    }
}
