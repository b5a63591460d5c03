package io.moecluster.bench;

import io.grpc.ManagedChannel;
import io.moecluster.attention.AttentionNode;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.router.RouterNode;
import io.moecluster.service.security.ClientSecurity;
import io.moecluster.service.security.TestPki;
import io.moecluster.service.security.TlsSettings;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Decode throughput of a whole cluster with the security layers off and on, side by side in one
 * run on one model, the configurations alternating round by round: {@code plain} (no data-plane
 * secret, plaintext gRPC: the cluster before authentication), {@code mac} (every Aeron message
 * signed and checked), and {@code mac+tls} (that, plus TLS on the router's API with a bearer token,
 * and mutual TLS from the router to the attention service; certificates made for the run). Each
 * run starts a fresh cluster in this JVM (embedded Aeron media driver, two expert services, an
 * attention service, a router-service on loopback), as {@link TracingOverhead} does.
 *
 * <pre>
 * scripts/bench-security.sh [MODEL_DIR] [concurrency=8] [requests=16] [prompt=16] [tokens=64] [rounds=4] [threads=1]
 * </pre>
 */
public final class SecurityOverhead {
    private static final String TOKEN = "bench-token-0123456789abcdef0123456789";

    private SecurityOverhead() {
    }

    record Result(long tokens, double seconds) {
        double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: SecurityOverhead MODEL_DIR [concurrency=8] [requests=16] [prompt=16] [tokens=64] "
                    + "[rounds=4] [threads=1]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        Map<String, String> o = new LinkedHashMap<>(Map.of("concurrency", "8", "requests", "16", "prompt", "16",
                "tokens", "64", "rounds", "4", "threads", "1"));
        OneJvmCluster.options(args, o);
        OneJvmCluster.Load load = OneJvmCluster.Load.of(o);
        ModelConfig config = ModelConfig.load(model);
        Path work = Files.createTempDirectory("moe-security-bench");
        TestPki pki = TestPki.create(work, "bench-ca");
        Security tls = new Security(pki, pki.issue("router", "127.0.0.1"), pki.issue("attention", "127.0.0.1"),
                Files.writeString(work.resolve("tokens"), "bench user " + TOKEN + "\n"));
        System.out.printf(Locale.ROOT, "model %s: %s, hidden %d, %d layers, %d experts top-%d; standalone router, %d "
                        + "thread(s) per service, %d cores%n", model, config.architecture().modelType(), config.hiddenSize(),
                config.numLayers(), config.numExperts(), config.topK(), load.threads(), Runtime.getRuntime().availableProcessors());
        System.out.println("load: " + load);
        List<String> modes = List.of("plain", "mac", "mac+tls");
        Map<String, List<Result>> results = new LinkedHashMap<>();
        modes.forEach(m -> results.put(m, new ArrayList<>()));
        for (String m : List.of("mac+tls", "plain")) {
            Result warm = runOnce(model, config, m, tls, load);
            System.out.printf(Locale.ROOT, "warm-up run (discarded, %s): %.1f tokens/s%n", m, warm.tokensPerSecond());
        }
        for (int round = 0; round < load.rounds(); round++) {
            for (String m : modes) {
                Result r = runOnce(model, config, m, tls, load);
                results.get(m).add(r);
                System.out.printf(Locale.ROOT, "round %d %-8s %8.1f tokens/s  (%d tokens in %.2f s)%n", round + 1, m,
                        r.tokensPerSecond(), r.tokens(), r.seconds());
            }
        }
        System.out.println();
        System.out.printf(Locale.ROOT, "%-8s %12s %12s %12s %12s %14s%n", "security", "mean tok/s", "median", "min", "max",
                "vs plain");
        double plain = mean(results.get("plain"));
        for (Map.Entry<String, List<Result>> e : results.entrySet()) {
            double[] v = e.getValue().stream().mapToDouble(Result::tokensPerSecond).sorted().toArray();
            double median = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
            double m = mean(e.getValue());
            System.out.printf(Locale.ROOT, "%-8s %12.1f %12.1f %12.1f %12.1f %13.1f%%%n", e.getKey(), m, median, v[0],
                    v[v.length - 1], 100 * (m / plain - 1));
        }
        try (var files = Files.walk(work)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        System.exit(0);
    }

    private record Security(TestPki pki, TestPki.Issued router, TestPki.Issued attention, Path tokens) {
    }

    private static double mean(List<Result> rs) {
        return rs.stream().mapToDouble(Result::tokensPerSecond).average().orElse(0);
    }

    static Result runOnce(Path model, ModelConfig config, String mode, Security sec, OneJvmCluster.Load load) throws Exception {
        boolean mac = !mode.equals("plain");
        boolean tls = mode.equals("mac+tls");
        List<AutoCloseable> open = new ArrayList<>();
        ExecutorService clients = Executors.newFixedThreadPool(load.concurrency());
        long done;
        double seconds;
        try {
            EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
            open.add(driver);
            ClusterSpec spec = OneJvmCluster.spec(driver, config, false);
            EngineOptions engine = new EngineOptions(load.threads(), 256, 0);
            String secret = "bench-data-plane-secret-0123456789abcdef";
            for (ClusterSpec.Expert e : spec.experts()) {
                open.add(ExpertNode.launch(new ExpertNode.Context().cluster(spec).id(e.id()).model(model)
                        .threads(load.threads()).maxRows(engine.maxBatchTokens())
                        .dataPlaneAuth(mac ? DataPlaneAuth.fromText(secret, "bench") : DataPlaneAuth.none())));
            }
            AttentionNode.Context attention = new AttentionNode.Context().cluster(spec).id("attention-0").model(model)
                    .engine(engine).maxRunning(load.concurrency()).maxQueued(4 * load.requests()).moeTimeout(Duration.ofSeconds(60))
                    .dataPlaneAuth(mac ? DataPlaneAuth.fromText(secret, "bench") : DataPlaneAuth.none());
            RouterNode.Context router = new RouterNode.Context().cluster(spec).model(model)
                    .maxActiveRequests(4 * load.requests()).maxBatchTokens(engine.maxBatchTokens()).threads(load.threads())
                    .expertTimeout(Duration.ofSeconds(30))
                    .dataPlaneAuth(mac ? DataPlaneAuth.fromText(secret, "bench") : DataPlaneAuth.none());
            if (tls) {
                attention.tls(new TlsSettings(sec.attention().cert(), sec.attention().key(), sec.pki().caCert()));
                router.tls(new TlsSettings(sec.router().cert(), sec.router().key(), sec.pki().caCert()))
                        .apiTokens(sec.tokens());
            }
            open.add(AttentionNode.launch(attention));
            RouterNode node = RouterNode.launch(router);
            open.add(node);
            ClientSecurity client = tls ? new ClientSecurity(true, sec.pki().caCert(), null, null, TOKEN, null)
                    : ClientSecurity.plaintext();
            ManagedChannel channel = client.channel(node.address());
            open.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
            var stub = InferenceGrpc.newBlockingStub(channel);
            SplittableRandom rnd = new SplittableRandom(42);
            OneJvmCluster.load(clients, stub, load.concurrency(), load.prompt(), Math.min(8, load.tokens()), config, rnd); // warm-up
            long start = System.nanoTime();
            done = OneJvmCluster.load(clients, stub, load.requests(), load.prompt(), load.tokens(), config, rnd);
            seconds = (System.nanoTime() - start) / 1e9;
        } finally {
            clients.shutdownNow();
            for (int i = open.size() - 1; i >= 0; i--) {
                open.get(i).close();
            }
        }
        return new Result(done, seconds);
    }
}
