package io.moecluster.bench;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.attention.AttentionNode;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.expert.ExpertNode;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.router.RouterNode;
import io.moecluster.telemetry.LayerSampling;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Decode throughput of a whole cluster with tracing off, with full tracing (per-layer spans on
 * every step) and with the sampled setting, measured side by side in one run on one model. Each
 * configuration starts a fresh cluster in this JVM (embedded Aeron media driver, two expert
 * services, an attention service, a router-service, gRPC on loopback), warms up, then runs the
 * same concurrent load; the rounds alternate the configurations so drift hits them alike. Spans
 * go through the SDK's batch span processor, as in production, into an exporter that counts and
 * drops them, so the network is not measured.
 *
 * <pre>
 * ./moe model make-random --arch mixtral --preset bench --out /tmp/bench-model
 * ./mvn25 -q -pl benchmarks -am package -DskipTests
 * java --add-modules jdk.incubator.vector --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
 *      --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
 *      -cp benchmarks/target/benchmarks.jar io.moecluster.bench.TracingOverhead /tmp/bench-model \
 *      [concurrency=8] [requests=16] [prompt=16] [tokens=64] [rounds=3] [sampled=every:16] [embedded=false] [threads=1]
 * </pre>
 * (scripts/bench-tracing.sh runs exactly that.)
 */
public final class TracingOverhead {
    private TracingOverhead() {
    }

    /** Counts and drops: the cost of making and batching spans without the cost of sending them. */
    static final class DroppingExporter implements SpanExporter {
        final AtomicLong spans = new AtomicLong();

        @Override
        public CompletableResultCode export(Collection<SpanData> batch) {
            spans.addAndGet(batch.size());
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode flush() {
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode shutdown() {
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public String toString() {
            return "a dropping exporter";
        }
    }

    record Result(long tokens, double seconds, long spans) {
        double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: TracingOverhead MODEL_DIR [concurrency=8] [requests=16] [prompt=16] [tokens=64] "
                    + "[rounds=3] [sampled=every:16] [embedded=false] [threads=1]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        Map<String, String> o = new LinkedHashMap<>(Map.of("concurrency", "8", "requests", "16", "prompt", "16",
                "tokens", "64", "rounds", "3", "sampled", "every:" + LayerSampling.DEFAULT_EVERY, "embedded", "false",
                "threads", "1"));
        OneJvmCluster.options(args, o);
        OneJvmCluster.Load load = OneJvmCluster.Load.of(o);
        LayerSampling sampled = LayerSampling.parse(o.get("sampled"));
        boolean embedded = Boolean.parseBoolean(o.get("embedded"));
        ModelConfig config = ModelConfig.load(model);
        System.out.printf(Locale.ROOT, "model %s: %s, hidden %d, %d layers, %d experts top-%d; %s router, %d thread(s) "
                        + "per service, %d cores%n", model, config.architecture().modelType(), config.hiddenSize(),
                config.numLayers(), config.numExperts(), config.topK(), embedded ? "embedded" : "standalone", load.threads(),
                Runtime.getRuntime().availableProcessors());
        System.out.println("load: " + load);

        Map<String, List<Result>> results = new LinkedHashMap<>();
        results.put("off", new ArrayList<>());
        results.put("full (all)", new ArrayList<>());
        results.put("sampled (" + sampled + ")", new ArrayList<>());
        // Discarded runs first, one traced and one not, the full load each: the JIT compiles the engine,
        // transports, gRPC and the tracing code, and the checkpoint's pages are cached, for all that follow.
        for (TracingOptions t : List.of(TracingOptions.batchingTo(new DroppingExporter(), LayerSampling.ALL),
                TracingOptions.off())) {
            Result warm = runOnce(model, config, t, new DroppingExporter(), embedded, load);
            System.out.printf(Locale.ROOT, "warm-up run (discarded, %s): %.1f tokens/s%n", t.enabled() ? "traced" : "off",
                    warm.tokensPerSecond());
        }
        for (int round = 0; round < load.rounds(); round++) {
            for (String mode : results.keySet()) {
                DroppingExporter exporter = new DroppingExporter();
                TracingOptions tracing = switch (mode) {
                    case "off" -> TracingOptions.off();
                    case "full (all)" -> TracingOptions.batchingTo(exporter, LayerSampling.ALL);
                    default -> TracingOptions.batchingTo(exporter, sampled);
                };
                Result r = runOnce(model, config, tracing, exporter, embedded, load);
                results.get(mode).add(r);
                System.out.printf(Locale.ROOT, "round %d %-20s %8.1f tokens/s  (%d tokens in %.2f s, %d spans exported, warm-up included)%n",
                        round + 1, mode, r.tokensPerSecond(), r.tokens(), r.seconds(), r.spans());
            }
        }
        System.out.println();
        System.out.printf(Locale.ROOT, "%-20s %12s %12s %12s %14s%n", "tracing", "mean tok/s", "min", "max", "vs off");
        double off = mean(results.get("off"));
        for (Map.Entry<String, List<Result>> e : results.entrySet()) {
            double m = mean(e.getValue());
            System.out.printf(Locale.ROOT, "%-20s %12.1f %12.1f %12.1f %13.1f%%%n", e.getKey(), m,
                    e.getValue().stream().mapToDouble(Result::tokensPerSecond).min().orElse(0),
                    e.getValue().stream().mapToDouble(Result::tokensPerSecond).max().orElse(0), 100 * (m / off - 1));
        }
        System.exit(0);
    }

    private static double mean(List<Result> rs) {
        return rs.stream().mapToDouble(Result::tokensPerSecond).average().orElse(0);
    }

    static Result runOnce(Path model, ModelConfig config, TracingOptions tracing, DroppingExporter exporter,
                          boolean embedded, OneJvmCluster.Load load)
            throws Exception {
        List<AutoCloseable> open = new ArrayList<>();
        ExecutorService clients = Executors.newFixedThreadPool(load.concurrency());
        long done;
        double seconds;
        try {
            EmbeddedMediaDriver driver = new EmbeddedMediaDriver(EmbeddedMediaDriver.newTempDir());
            open.add(driver);
            ClusterSpec spec = OneJvmCluster.spec(driver, config, embedded);
            EngineOptions engine = new EngineOptions(load.threads(), 256, 0);
            for (ClusterSpec.Expert e : spec.experts()) {
                open.add(ExpertNode.launch(new ExpertNode.Context().cluster(spec).id(e.id()).model(model)
                        .threads(load.threads()).maxRows(engine.maxBatchTokens()).tracing(tracing)));
            }
            open.add(AttentionNode.launch(new AttentionNode.Context().cluster(spec).id("attention-0").model(model)
                    .engine(engine).maxRunning(load.concurrency()).maxQueued(4 * load.requests()).moeTimeout(Duration.ofSeconds(60))
                    .tracing(tracing)));
            RouterNode router = RouterNode.launch(new RouterNode.Context().cluster(spec).model(model)
                    .maxActiveRequests(4 * load.requests()).maxBatchTokens(engine.maxBatchTokens()).threads(load.threads())
                    .expertTimeout(Duration.ofSeconds(30)).tracing(tracing));
            open.add(router);
            ManagedChannel channel = NettyChannelBuilder.forTarget(router.address()).usePlaintext().build();
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
        // Closing flushed the batch processors: every span of the run (warm-up included) is counted.
        return new Result(done, seconds, exporter.spans.get());
    }
}
