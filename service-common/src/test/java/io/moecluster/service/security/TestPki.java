package io.moecluster.service.security;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A certificate authority made in the test (BouncyCastle; EC P-256), as an operator would make
 * the cluster's with openssl or cert-manager: a self-signed CA, and certificates it signs for
 * services (server and client use, names and addresses as subject alternative names) and for
 * clients. Files are PEM: certificates, and keys in PKCS #8.
 */
public final class TestPki {
    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

    /** A certificate and its key, as files. */
    public record Issued(Path cert, Path key) {
    }

    private final Path dir;
    private final String name;
    private final KeyPair caKeys;
    private final X509CertificateHolder caCert;
    private final Path caFile;

    private TestPki(Path dir, String name) throws GeneralSecurityException, IOException {
        this.dir = Files.createDirectories(dir);
        this.name = name;
        this.caKeys = ecKeys();
        X500Name subject = new X500Name("CN=" + name);
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(),
                Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(2))), subject,
                caKeys.getPublic());
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(caKeys.getPublic()));
        this.caCert = b.build(signer(caKeys));
        this.caFile = dir.resolve(name + "-ca.crt");
        Files.writeString(caFile, pem(caCert));
    }

    /** A new CA named {@code name}, its certificate written to {@code dir/NAME-ca.crt}. */
    public static TestPki create(Path dir, String name) {
        try {
            return new TestPki(dir, name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public Path caCert() {
        return caFile;
    }

    /**
     * A certificate for {@code subject} signed by this CA, good for servers and clients, with each
     * of {@code names} (a DNS name or an IP address) as a subject alternative name; files
     * {@code dir/SUBJECT.crt} and {@code dir/SUBJECT.key}.
     */
    public Issued issue(String subject, String... names) {
        return issue(subject, Instant.now().plus(Duration.ofDays(1)), names);
    }

    /** As {@link #issue(String, String...)}, valid until {@code notAfter}. */
    public Issued issue(String subject, Instant notAfter, String... names) {
        try {
            KeyPair keys = ecKeys();
            JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(caCert.getSubject(), serial(),
                    Date.from(Instant.now().minus(Duration.ofHours(1))), Date.from(notAfter),
                    new X500Name("CN=" + subject + ",O=moe-cluster test"), keys.getPublic());
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
            b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(new KeyPurposeId[] {
                KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            b.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(caCert));
            if (names.length > 0) {
                List<GeneralName> alt = new ArrayList<>();
                for (String n : names) {
                    alt.add(isAddress(n) ? new GeneralName(GeneralName.iPAddress, n) : new GeneralName(GeneralName.dNSName, n));
                }
                b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(alt.toArray(GeneralName[]::new)));
            }
            X509CertificateHolder cert = b.build(signer(caKeys));
            Path certFile = dir.resolve(subject + ".crt");
            Path keyFile = dir.resolve(subject + ".key");
            Files.writeString(certFile, pem(cert));
            StringWriter key = new StringWriter();
            try (JcaPEMWriter w = new JcaPEMWriter(key)) {
                w.writeObject(new JcaPKCS8Generator(keys.getPrivate(), null));
            }
            Files.writeString(keyFile, key.toString());
            return new Issued(certFile, keyFile);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return "TestPki[" + name + "]";
    }

    private static boolean isAddress(String n) {
        return n.matches("[0-9.]+") || n.contains(":");
    }

    private static BigInteger serial() {
        return BigInteger.valueOf(SERIAL.incrementAndGet());
    }

    private static KeyPair ecKeys() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private static ContentSigner signer(KeyPair keys) {
        try {
            return new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate());
        } catch (org.bouncycastle.operator.OperatorCreationException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String pem(X509CertificateHolder cert) throws IOException {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter w = new JcaPEMWriter(out)) {
            w.writeObject(cert);
        }
        return out.toString();
    }
}
