package io.moecluster.service.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS, mutual TLS, certificate reloading, bearer tokens and roles on a gRPC server built the way
 * the services build theirs, with certificates made in the test.
 */
class ServiceSecurityTest {
    static final String USER_TOKEN = "user-token-0123456789abcdef0123456789";
    static final String OPERATOR_TOKEN = "operator-token-0123456789abcdef012345";

    @TempDir
    Path dir;

    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    private Path tokens() throws IOException {
        return Files.writeString(dir.resolve("tokens"), "# name role token\n"
                + "alice user sha256:" + ApiTokens.sha256Hex(USER_TOKEN) + "\n"
                + "ops   operator " + OPERATOR_TOKEN + "\n");
    }

    /** A health server secured by {@code security}; health itself counts as an operator API here. */
    private int serve(ServiceSecurity security, boolean requireClientCertificates, Role healthNeeds) throws IOException {
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus("", ServingStatus.SERVING);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0),
                        security.serverCredentials(requireClientCertificates))
                .intercept(new AccessPolicy(security, healthNeeds == null ? Map.of()
                        : Map.of(HealthGrpc.SERVICE_NAME, healthNeeds)))
                .addService(health.getHealthService()).build().start();
        open.add(() -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        open.add(security);
        return server.getPort();
    }

    private ServingStatus check(ClientSecurity client, int port) throws InterruptedException {
        ManagedChannel channel = client.channel("127.0.0.1", port);
        try {
            return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus();
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private static Status.Code codeOf(Runnable call) {
        try {
            call.run();
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode();
        }
    }

    private Status.Code code(ClientSecurity client, int port) {
        return codeOf(() -> {
            try {
                check(client, port);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    @Test
    void tokensFileHoldsNamesRolesAndTokensOrTheirHashes() throws Exception {
        ApiTokens tokens = ApiTokens.load(tokens());
        assertThat(tokens.size()).isEqualTo(2);
        assertThat(tokens.lookup(USER_TOKEN)).isEqualTo(new Principal("alice", Role.USER, "token"));
        assertThat(tokens.lookup(OPERATOR_TOKEN).role()).isEqualTo(Role.OPERATOR);
        assertThat(tokens.lookup("nope")).isNull();
        assertThat(tokens.lookup("")).isNull();
        assertThat(Role.OPERATOR.covers(Role.USER)).isTrue();
        assertThat(Role.USER.covers(Role.OPERATOR)).isFalse();
        assertThatThrownBy(() -> ApiTokens.load(Files.writeString(dir.resolve("bad1"), "a admin " + USER_TOKEN)))
                .hasMessageContaining("line 1").hasMessageContaining("not user or operator");
        assertThatThrownBy(() -> ApiTokens.load(Files.writeString(dir.resolve("bad2"), "\nshort user abc")))
                .hasMessageContaining("line 2").hasMessageContaining("at least 32");
        assertThatThrownBy(() -> ApiTokens.load(Files.writeString(dir.resolve("bad3"), "x user sha256:zz")))
                .hasMessageContaining("64 hex digits");
    }

    @Test
    void aChangedTokensFileIsReadAgain() throws Exception {
        Path file = tokens();
        ApiTokens tokens = ApiTokens.load(file);
        assertThat(tokens.lookup(USER_TOKEN)).isNotNull();
        Files.writeString(file, "bob operator " + USER_TOKEN + "\n");
        Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 5000));
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (tokens.lookup(USER_TOKEN) == null || tokens.lookup(USER_TOKEN).role() != Role.OPERATOR) {
            assertThat(System.nanoTime()).as("reloaded within 10 s").isLessThan(deadline);
            Thread.sleep(100);
        }
        assertThat(tokens.lookup(OPERATOR_TOKEN)).as("removed with the old file").isNull();
    }

    @Test
    void mutualTlsAdmitsOnlyClientsWithACertificateOfTheClusterCa() throws Exception {
        TestPki cluster = TestPki.create(dir, "cluster");
        TestPki other = TestPki.create(dir, "other");
        TestPki.Issued server = cluster.issue("attention", "127.0.0.1", "localhost");
        TestPki.Issued router = cluster.issue("router", "127.0.0.1");
        TestPki.Issued stranger = other.issue("stranger", "127.0.0.1");
        int port = serve(ServiceSecurity.of(new TlsSettings(server.cert(), server.key(), cluster.caCert()), null), true,
                Role.OPERATOR);

        assertThat(check(new ClientSecurity(true, cluster.caCert(), router.cert(), router.key(), null, null), port))
                .isEqualTo(ServingStatus.SERVING);
        // No certificate, another CA's certificate, plaintext: the handshake fails, nothing is served.
        assertThat(code(new ClientSecurity(true, cluster.caCert(), null, null, null, null), port))
                .isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(code(new ClientSecurity(true, cluster.caCert(), stranger.cert(), stranger.key(), null, null), port))
                .isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(code(ClientSecurity.plaintext(), port)).isEqualTo(Status.Code.UNAVAILABLE);
        // A client that trusts another CA refuses the server.
        assertThat(code(new ClientSecurity(true, other.caCert(), router.cert(), router.key(), null, null), port))
                .isEqualTo(Status.Code.UNAVAILABLE);
        // The server's name must match: 127.0.0.1 and localhost are in its certificate, moe-router is not.
        assertThat(code(new ClientSecurity(true, cluster.caCert(), router.cert(), router.key(), null, "moe-router"), port))
                .isEqualTo(Status.Code.UNAVAILABLE);
    }

    @Test
    void tokensAndRolesDecideWhoMayCall() throws Exception {
        TestPki cluster = TestPki.create(dir, "cluster");
        TestPki.Issued server = cluster.issue("router", "127.0.0.1");
        TestPki.Issued operator = cluster.issue("operator", "127.0.0.1");
        ServiceSecurity security = ServiceSecurity.of(new TlsSettings(server.cert(), server.key(), cluster.caCert()),
                ApiTokens.load(tokens()));
        int adminLike = serve(security, false, Role.OPERATOR);
        ClientSecurity tls = new ClientSecurity(true, cluster.caCert(), null, null, null, null);
        assertThat(code(tls, adminLike)).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(withToken(tls, "wrong-token-0123456789abcdef0123456789"), adminLike))
                .isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(withToken(tls, USER_TOKEN), adminLike)).isEqualTo(Status.Code.PERMISSION_DENIED);
        assertThat(code(withToken(tls, OPERATOR_TOKEN), adminLike)).isEqualTo(Status.Code.OK);
        // A client certificate of the cluster CA is an operator, no token needed.
        assertThat(code(new ClientSecurity(true, cluster.caCert(), operator.cert(), operator.key(), null, null), adminLike))
                .isEqualTo(Status.Code.OK);

        // Optional client certificates: another CA's makes nobody an operator (the handshake may pass: then
        // the caller is anonymous).
        TestPki other = TestPki.create(dir, "other");
        TestPki.Issued stranger = other.issue("stranger", "127.0.0.1");
        assertThat(code(new ClientSecurity(true, cluster.caCert(), stranger.cert(), stranger.key(), null, null), adminLike))
                .isIn(Status.Code.UNAVAILABLE, Status.Code.UNAUTHENTICATED);
        assertThat(security.authenticate(null, new java.security.cert.Certificate[] {
            (java.security.cert.Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(Files.newInputStream(stranger.cert()))})).as("checked here, not only in the handshake")
                .isNull();
        assertThat(security.authenticate(null, new java.security.cert.Certificate[] {
            (java.security.cert.Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(Files.newInputStream(operator.cert()))}).role()).isEqualTo(Role.OPERATOR);

        ServiceSecurity same = ServiceSecurity.of(new TlsSettings(server.cert(), server.key(), cluster.caCert()),
                ApiTokens.load(tokens()));
        int userApi = serve(same, false, Role.USER);
        assertThat(code(tls, userApi)).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(withToken(tls, USER_TOKEN), userApi)).isEqualTo(Status.Code.OK);
    }

    @Test
    void withoutTokensOrACaEverythingIsOpenAndTokensAlsoWorkWithoutTls() throws Exception {
        assertThat(ServiceSecurity.none().enforcing()).isFalse();
        int open = serve(ServiceSecurity.none(), false, Role.OPERATOR);
        assertThat(code(ClientSecurity.plaintext(), open)).isEqualTo(Status.Code.OK);
        int tokensOnly = serve(ServiceSecurity.of(null, ApiTokens.load(tokens())), false, Role.OPERATOR);
        ClientSecurity plain = ClientSecurity.plaintext();
        assertThat(code(plain, tokensOnly)).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(withToken(plain, OPERATOR_TOKEN), tokensOnly)).isEqualTo(Status.Code.OK);
    }

    @Test
    void aRenewedCertificateIsServedWithoutARestart() throws Exception {
        TestPki cluster = TestPki.create(dir, "cluster");
        TestPki.Issued first = cluster.issue("router-2025", "127.0.0.1");
        Path cert = Files.copy(first.cert(), dir.resolve("live.crt"));
        Path key = Files.copy(first.key(), dir.resolve("live.key"));
        int port = serve(ServiceSecurity.of(new TlsSettings(cert, key, cluster.caCert(), Duration.ofMillis(200)), null),
                false, null);
        assertThat(servedCertificate(cluster, port)).contains("router-2025");

        TestPki.Issued renewed = cluster.issue("router-2026", "127.0.0.1");
        Files.copy(renewed.key(), key, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(renewed.cert(), cert, StandardCopyOption.REPLACE_EXISTING);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!servedCertificate(cluster, port).contains("router-2026")) {
            assertThat(System.nanoTime()).as("the renewed certificate served within 20 s").isLessThan(deadline);
            Thread.sleep(200);
        }
        assertThat(check(new ClientSecurity(true, cluster.caCert(), null, null, null, null), port))
                .isEqualTo(ServingStatus.SERVING);
    }

    /** The subject of the certificate a new TLS connection to the port is shown. */
    private static String servedCertificate(TestPki ca, int port) throws Exception {
        ClientSecurity client = new ClientSecurity(true, ca.caCert(), null, null, null, null);
        try (SSLSocket s = (SSLSocket) client.sslContext().getSocketFactory().createSocket("127.0.0.1", port)) {
            SSLParameters p = s.getSSLParameters();
            p.setApplicationProtocols(new String[] {"h2"});
            s.setSSLParameters(p);
            s.startHandshake();
            return ((X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName();
        }
    }

    private static ClientSecurity withToken(ClientSecurity c, String token) {
        return new ClientSecurity(c.tls(), c.ca(), c.cert(), c.key(), token, c.serverName());
    }
}
