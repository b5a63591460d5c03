package io.moecluster.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.moecluster.attention.AttentionNode;
import io.moecluster.cli.MoeCommand;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.internal.v1.AttentionStatusRequest;
import io.moecluster.proto.internal.v1.AttentionWorkerGrpc;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.router.RouterNode;
import io.moecluster.sbe.ElementType;
import io.moecluster.service.security.ApiTokens;
import io.moecluster.service.security.ClientSecurity;
import io.moecluster.service.security.TestPki;
import io.moecluster.service.security.TlsSettings;
import io.moecluster.transport.BoundedPublisher;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.moecluster.transport.MessagePoller;
import io.moecluster.transport.TokenBatchWriter;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * A secured cluster in one JVM, every service on its own UDP endpoint on loopback: the data plane
 * signed with the cluster secret, TLS on every gRPC and HTTP port with certificates made in the
 * test, mutual TLS to the attention service, bearer tokens on the public APIs. Greedy tokens equal
 * the single-process engine's; who may call what; forged data-plane messages computed nothing;
 * the moe client commands with their TLS and token flags.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SecureClusterTest {
    static final String USER_TOKEN = "alice-0123456789abcdef0123456789abcdef";
    static final String OPERATOR_TOKEN = "ops-0123456789abcdef0123456789abcdef01";
    static final String SECRET = "cluster-secret-0123456789abcdef0123456789";

    @TempDir
    static Path dir;

    private final List<AutoCloseable> open = new ArrayList<>();
    private EmbeddedMediaDriver driver;
    private ClusterSpec spec;
    private Path model;
    private TestPki pki;
    private TestPki stranger;
    private TestPki.Issued operatorCert;
    private TestPki.Issued strangerCert;
    private RouterNode router;
    private AttentionNode attention;
    private ExpertNode expert0;
    private DataPlaneAuth routerAuth;
    private int plainHealthPort;

    @BeforeAll
    void start() throws Exception {
        model = GoldenModels.dir(GoldenModels.MIXTRAL);
        pki = TestPki.create(dir, "moe-cluster");
        stranger = TestPki.create(dir, "stranger");
        TestPki.Issued routerCert = pki.issue("router", "127.0.0.1", "localhost");
        TestPki.Issued attentionCert = pki.issue("attention-0", "127.0.0.1");
        TestPki.Issued expertCert = pki.issue("expert", "127.0.0.1");
        operatorCert = pki.issue("operator", "127.0.0.1");
        strangerCert = stranger.issue("mallory", "127.0.0.1");
        Path tokens = Files.writeString(dir.resolve("api-tokens"), "alice user sha256:"
                + ApiTokens.sha256Hex(USER_TOKEN) + "\nops operator " + OPERATOR_TOKEN + "\n");
        Path secret = Files.writeString(dir.resolve("data-plane.secret"), SECRET + "\n");
        driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
        open.add(driver);
        spec = new ClusterEndToEndTest().spec(driver, ModelConfig.load(model), false, true);
        for (ClusterSpec.Expert e : spec.experts()) {
            ExpertNode node = ExpertNode.launch(ClusterEndToEndTest.expert(spec, e.id(), model)
                    .dataPlaneSecretFile(secret).tls(new TlsSettings(expertCert.cert(), expertCert.key(), pki.caCert())));
            open.add(node);
            expert0 = expert0 == null ? node : expert0;
        }
        attention = AttentionNode.launch(ClusterEndToEndTest.attention(spec, model).dataPlaneSecretFile(secret)
                .tls(new TlsSettings(attentionCert.cert(), attentionCert.key(), pki.caCert())));
        open.add(attention);
        routerAuth = DataPlaneAuth.fromFile(secret);
        plainHealthPort = ClusterEndToEndTest.freePort();
        router = RouterNode.launch(ClusterEndToEndTest.router(spec, model).dataPlaneAuth(routerAuth)
                .tls(new TlsSettings(routerCert.cert(), routerCert.key(), pki.caCert())).apiTokens(tokens)
                .httpPort(ClusterEndToEndTest.freePort()).healthPort(plainHealthPort)
                .chatTemplate(Files.writeString(dir.resolve("template.jinja"), OpenAiCluster.TEMPLATE)));
        open.add(router);
    }

    @AfterAll
    void stop() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    private ClientSecurity tls(String token) {
        return new ClientSecurity(true, pki.caCert(), null, null, token, null);
    }

    private ClientSecurity operator() {
        return new ClientSecurity(true, pki.caCert(), operatorCert.cert(), operatorCert.key(), null, null);
    }

    private <T> T call(ClientSecurity client, String target, java.util.function.Function<ManagedChannel, T> rpc)
            throws InterruptedException {
        ManagedChannel channel = client.channel(target);
        try {
            return rpc.apply(channel);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    private Status.Code code(ClientSecurity client, String target,
                             java.util.function.Function<ManagedChannel, ?> rpc) throws InterruptedException {
        try {
            call(client, target, rpc);
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode();
        }
    }

    private static Object admin(ManagedChannel c) {
        return AdminGrpc.newBlockingStub(c).withDeadlineAfter(20, TimeUnit.SECONDS)
                .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
    }

    private static Object inference(ManagedChannel c) {
        return InferenceGrpc.newBlockingStub(c).withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(ClusterEndToEndTest.request(ClusterEndToEndTest.prompt(4, 1)));
    }

    private static Object attentionStatus(ManagedChannel c) {
        return AttentionWorkerGrpc.newBlockingStub(c).withDeadlineAfter(20, TimeUnit.SECONDS)
                .status(AttentionStatusRequest.getDefaultInstance());
    }

    @Test
    void greedyTokensOverTlsAndASignedDataPlaneEqualTheSingleProcessEngine() throws Exception {
        long routerRejected = routerAuth.rejected();
        long expertRejected = expert0.worker().unauthenticatedDropped();
        int[] lengths = {2, 7, 13, 30};
        ExecutorService clients = Executors.newFixedThreadPool(lengths.length);
        try {
            List<Future<int[]>> results = new ArrayList<>();
            for (int i = 0; i < lengths.length; i++) {
                int[] p = ClusterEndToEndTest.prompt(lengths[i], i + 60);
                results.add(clients.submit(() -> call(tls(USER_TOKEN), router.address(), c -> stream(c, p))));
            }
            for (int i = 0; i < lengths.length; i++) {
                assertThat(results.get(i).get(120, TimeUnit.SECONDS)).as("request %d", i)
                        .containsExactly(ClusterEndToEndTest.singleProcessGreedy(model,
                                ClusterEndToEndTest.prompt(lengths[i], i + 60)));
            }
        } finally {
            clients.shutdownNow();
        }
        assertThat(routerAuth.rejected()).as("nothing the cluster itself sent was refused").isEqualTo(routerRejected);
        assertThat(expert0.worker().unauthenticatedDropped()).isEqualTo(expertRejected);
    }

    private static int[] stream(ManagedChannel c, int[] prompt) {
        List<Integer> tokens = new ArrayList<>();
        Iterator<GenerateStreamResponse> it = InferenceGrpc.newBlockingStub(c).withDeadlineAfter(120, TimeUnit.SECONDS)
                .generateStream(ClusterEndToEndTest.request(prompt));
        while (it.hasNext()) {
            GenerateStreamResponse r = it.next();
            if (r.hasToken()) {
                tokens.add(r.getToken().getTokenId());
            }
        }
        return tokens.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void thePublicApiNeedsATokenAndTheAdminApiAnOperator() throws Exception {
        String target = router.address();
        assertThat(code(tls(null), target, SecureClusterTest::inference)).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(tls("not-a-token-0123456789abcdef0123456789"), target, SecureClusterTest::inference))
                .isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(tls(USER_TOKEN), target, SecureClusterTest::inference)).isEqualTo(Status.Code.OK);
        assertThat(code(tls(null), target, SecureClusterTest::admin)).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(code(tls(USER_TOKEN), target, SecureClusterTest::admin)).isEqualTo(Status.Code.PERMISSION_DENIED);
        assertThat(code(tls(OPERATOR_TOKEN), target, SecureClusterTest::admin)).isEqualTo(Status.Code.OK);
        assertThat(code(operator(), target, SecureClusterTest::admin)).as("a client certificate of the cluster CA")
                .isEqualTo(Status.Code.OK);
        assertThat(code(ClientSecurity.plaintext(), target, SecureClusterTest::admin)).as("plaintext to a TLS port")
                .isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(code(new ClientSecurity(true, pki.caCert(), strangerCert.cert(), strangerCert.key(), null, null),
                target, SecureClusterTest::admin)).as("another CA's client certificate is nobody")
                .isIn(Status.Code.UNAVAILABLE, Status.Code.UNAUTHENTICATED);
        // Health is open, over TLS and on the plaintext health port, for probes.
        ServingStatus overTls = call(tls(null), target, c -> HealthGrpc.newBlockingStub(c)
                .check(HealthCheckRequest.getDefaultInstance()).getStatus());
        assertThat(overTls).isEqualTo(ServingStatus.SERVING);
        ServingStatus plain = call(ClientSecurity.plaintext(), "127.0.0.1:" + plainHealthPort, c -> HealthGrpc.newBlockingStub(c)
                .check(HealthCheckRequest.getDefaultInstance()).getStatus());
        assertThat(plain).isEqualTo(ServingStatus.SERVING);
        assertThat(code(ClientSecurity.plaintext(), "127.0.0.1:" + plainHealthPort, SecureClusterTest::admin))
                .as("the plaintext port serves health only").isEqualTo(Status.Code.UNIMPLEMENTED);
    }

    @Test
    void theInternalAttentionApiTakesOnlyClientsWithACertificateOfTheCluster() throws Exception {
        String target = attention.address();
        assertThat(code(operator(), target, SecureClusterTest::attentionStatus)).isEqualTo(Status.Code.OK);
        assertThat(code(tls(OPERATOR_TOKEN), target, SecureClusterTest::attentionStatus))
                .as("a token is no client certificate").isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(code(new ClientSecurity(true, pki.caCert(), strangerCert.cert(), strangerCert.key(), null, null),
                target, SecureClusterTest::attentionStatus)).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(code(ClientSecurity.plaintext(), target, SecureClusterTest::attentionStatus))
                .isEqualTo(Status.Code.UNAVAILABLE);
    }

    @Test
    void theHttpApiIsHttpsWithBearerTokens() throws Exception {
        String base = router.httpUrl();
        assertThat(base).startsWith("https://");
        HttpClient http = HttpClient.newBuilder().sslContext(tls(null).sslContext()).build();
        try {
            assertThat(get(http, base + "/models", null).statusCode()).isEqualTo(401);
            assertThat(get(http, base + "/models", null).body()).contains("invalid_api_key");
            assertThat(get(http, base + "/models", USER_TOKEN).statusCode()).isEqualTo(200);
            String root = base.substring(0, base.length() - 3);
            assertThat(get(http, root + "/health", null).statusCode()).isEqualTo(200);
            assertThat(get(http, root + "/metrics", USER_TOKEN).statusCode()).isEqualTo(403);
            assertThat(get(http, root + "/metrics", OPERATOR_TOKEN).statusCode()).as("no --metrics-port: 404")
                    .isEqualTo(404);
            HttpResponse<String> chat = http.send(HttpRequest.newBuilder(URI.create(base + "/chat/completions"))
                    .header("authorization", "Bearer " + USER_TOKEN).header("content-type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                            + " \"max_tokens\": 3, \"temperature\": 0}")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(chat.statusCode()).as(chat.body()).isEqualTo(200);
            assertThat(chat.body()).contains("chat.completion");
        } finally {
            http.close();
        }
        HttpClient plain = HttpClient.newHttpClient();
        try {
            String httpUrl = "http" + base.substring("https".length());
            assertThat(catching(() -> get(plain, httpUrl + "/models", USER_TOKEN))).as("plain HTTP to the TLS port")
                    .isNotNull();
        } finally {
            plain.close();
        }
    }

    private static HttpResponse<String> get(HttpClient http, String url, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20));
        if (token != null) {
            b.header("authorization", "Bearer " + token);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static Object catching(java.util.concurrent.Callable<?> c) {
        try {
            HttpResponse<?> r = (HttpResponse<?>) c.call();
            return r.statusCode() >= 400 ? r : null;
        } catch (Exception e) {
            return e;
        }
    }

    /**
     * The issue's attack: another process publishes a TokenBatch to an expert's stream claiming the
     * router's sender id and its own reply stream. Unsigned or signed with another secret, it
     * computes nothing and gets no answer; counted. Signed with the cluster's secret it is answered,
     * so the silence is the check's doing, not a wrong address.
     */
    @Test
    void forgedBatchesAreNotComputedAndForgedRepliesAreDropped() throws Exception {
        Aeron forger = driver.connect();
        ClusterSpec.Expert target = spec.experts().get(0);
        int replyStream = 7777;
        Subscription replies = forger.addSubscription(spec.replyChannel(ClusterSpec.ROUTER_SENDER), replyStream);
        AtomicInteger answers = new AtomicInteger();
        MessagePoller poller = new MessagePoller(replies, DataPlaneAuth.fromText(SECRET, "test"))
                .onBatchResult(r -> answers.incrementAndGet());
        long servedBefore = expert0.worker().batchesServed();
        long droppedBefore = expert0.worker().unauthenticatedDropped();
        int hidden = ModelConfig.load(model).hiddenSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rows = arena.allocate(4L * hidden);
            float[] weight = {1f};
            for (DataPlaneAuth signer : new DataPlaneAuth[] {DataPlaneAuth.none(),
                DataPlaneAuth.fromText("attacker-secret-0123456789abcdef", "attacker")}) {
                TokenBatchWriter w = new TokenBatchWriter(new BoundedPublisher(forger.addPublication(spec.channelOf(target),
                        target.streamId())), signer);
                w.send(1_000_000, 0, target.experts().get(0), ClusterSpec.ROUTER_SENDER, replyStream, rows, 0, 1, hidden,
                        ElementType.F32, weight);
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (expert0.worker().unauthenticatedDropped() < droppedBefore + 2 && System.nanoTime() < deadline) {
                poller.poll(16);
                Thread.sleep(5);
            }
            long quiet = System.nanoTime() + Duration.ofSeconds(1).toNanos();
            while (System.nanoTime() < quiet) {
                poller.poll(16);
                Thread.sleep(5);
            }
            assertThat(expert0.worker().unauthenticatedDropped() - droppedBefore).isEqualTo(2);
            assertThat(answers).as("no answer to a forged batch").hasValue(0);
            assertThat(expert0.worker().batchesServed()).as("nothing computed for them").isEqualTo(servedBefore);

            // With the secret (an insider), the same batch is answered.
            TokenBatchWriter insider = new TokenBatchWriter(new BoundedPublisher(forger.addPublication(
                    spec.channelOf(target), target.streamId())), DataPlaneAuth.fromText(SECRET, "insider"));
            insider.send(1_000_001, 0, target.experts().get(0), ClusterSpec.ROUTER_SENDER, replyStream, rows, 0, 1,
                    hidden, ElementType.F32, weight);
            deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (answers.get() == 0 && System.nanoTime() < deadline) {
                poller.poll(16);
                Thread.sleep(5);
            }
            assertThat(answers).hasValue(1);

            // A forged answer to the router (its expert reply stream) is dropped and counted there.
            long routerBefore = routerAuth.rejected();
            io.moecluster.transport.BatchResultWriter forgedReply = new io.moecluster.transport.BatchResultWriter(
                    new BoundedPublisher(forger.addPublication(spec.channelOf(spec.router()),
                            spec.router().replyStreamId())));
            forgedReply.sendRows(1, 0, 0, 100, rows, 0, 1, hidden, ElementType.F32);
            // The router reads its reply stream while a layer waits for answers: a request makes it look.
            assertThat(code(tls(USER_TOKEN), router.address(), SecureClusterTest::inference)).isEqualTo(Status.Code.OK);
            assertThat(routerAuth.rejected() - routerBefore).isEqualTo(1);
        }
    }

    private record Run(int exit, String out, String err) {
    }

    private static Run moe(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = MoeCommand.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void theClientCommandsTakeTlsAndTokenFlags() throws Exception {
        String ca = pki.caCert().toString();
        Run generate = moe("generate", "--server", router.address(), "--tls-ca", ca, "--token", USER_TOKEN,
                "--prompt", "Hello", "--max-tokens", "3");
        assertThat(generate.exit()).as(generate.err()).isZero();
        Run noToken = moe("generate", "--server", router.address(), "--tls-ca", ca, "--prompt", "Hello",
                "--max-tokens", "3");
        assertThat(noToken.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(noToken.err()).contains("UNAUTHENTICATED");
        Path tokenFile = Files.writeString(dir.resolve("operator.token"), OPERATOR_TOKEN + "\n");
        Run status = moe("status", "--server", router.address(), "--tls-ca", ca, "--token-file", tokenFile.toString());
        assertThat(status.exit()).as(status.err()).isZero();
        assertThat(status.out()).contains("expert-0", "expert-1", "attention");
        Run certStatus = moe("status", "--server", router.address(), "--tls-ca", ca, "--tls-cert",
                operatorCert.cert().toString(), "--tls-key", operatorCert.key().toString());
        assertThat(certStatus.exit()).as(certStatus.err()).isZero();
        Run userStatus = moe("status", "--server", router.address(), "--tls-ca", ca, "--token", USER_TOKEN);
        assertThat(userStatus.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(userStatus.err()).contains("PERMISSION_DENIED");
        Run loadgen = moe("loadgen", "--server", router.address(), "--tls-ca", ca, "--token", USER_TOKEN,
                "--requests", "2", "--concurrency", "2", "--max-tokens", "3");
        assertThat(loadgen.exit()).as(loadgen.err() + loadgen.out()).isZero();
        String httpHostPort = router.httpUrl().replace("https://", "").replace("/v1", "");
        Run chat = moe("chat", "--server", httpHostPort, "--tls-ca", ca, "--token", USER_TOKEN, "--message", "Hi",
                "--max-tokens", "3", "--temperature", "0");
        assertThat(chat.exit()).as(chat.err()).isZero();
        Run chatNoToken = moe("chat", "--server", httpHostPort, "--tls-ca", ca, "--message", "Hi", "--max-tokens", "3");
        assertThat(chatNoToken.exit()).isEqualTo(MoeCommand.EXIT_FAILURE);
        assertThat(chatNoToken.err()).contains("401");
        assertThat(Arrays.asList(generate.err().split("\n"))).anyMatch(l -> l.contains("completion tokens"));
    }
}
