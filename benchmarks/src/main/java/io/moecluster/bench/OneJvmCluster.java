package io.moecluster.bench;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import io.moecluster.transport.EmbeddedMediaDriver;
import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * What the whole-cluster-in-one-JVM benchmarks ({@link TracingOverhead}, {@link SecurityOverhead})
 * share: the cluster file of one router, one attention service and two expert services on IPC,
 * and the load of fixed-length greedy requests.
 */
final class OneJvmCluster {
    private OneJvmCluster() {
    }

    /**
     * Sends {@code requests} requests of {@code prompt} random token ids and {@code tokens}
     * completion tokens each (EOS ignored) through {@code clients}, as many at once as its
     * threads; returns the completion tokens received.
     */
    static long load(ExecutorService clients, InferenceGrpc.InferenceBlockingStub stub, int requests, int prompt,
                     int tokens, ModelConfig config, SplittableRandom rnd) throws Exception {
        List<Future<Integer>> futures = new ArrayList<>();
        for (int r = 0; r < requests; r++) {
            TokenIds.Builder ids = TokenIds.newBuilder().addIds(1);
            for (int i = 1; i < prompt; i++) {
                ids.addIds(3 + rnd.nextInt(config.vocabSize() - 3));
            }
            GenerateRequest req = GenerateRequest.newBuilder().setTokenIds(ids)
                    .setSampling(SamplingParameters.newBuilder().setMaxTokens(tokens).setIgnoreEos(true)).build();
            futures.add(clients.submit(() -> stub.withDeadlineAfter(600, TimeUnit.SECONDS).generate(req)
                    .getTokenIdsCount()));
        }
        long total = 0;
        for (Future<Integer> f : futures) {
            total += f.get();
        }
        return total;
    }

    /** Router, attention-0 and two expert services (the lower and the upper half of the experts), all on IPC. */
    static ClusterSpec spec(EmbeddedMediaDriver driver, ModelConfig config, boolean embedded) throws IOException {
        int slots = config.expertSlots();
        List<Integer> low = new ArrayList<>();
        List<Integer> high = new ArrayList<>();
        for (int e = 0; e < slots; e++) {
            (e < slots / 2 ? low : high).add(e);
        }
        int last = config.numLayers() - 1;
        return new ClusterSpec(driver.aeronDirectoryName(), "aeron:ipc", embedded,
                new ClusterSpec.Router("router-0", "127.0.0.1", freePort(), 1000, 1001),
                List.of(new ClusterSpec.Attention("attention-0", "127.0.0.1", freePort(), 1100)),
                List.of(new ClusterSpec.Expert("expert-0", low, 0, last, 2000),
                        new ClusterSpec.Expert("expert-1", high, 0, last, 2001)));
    }

    /**
     * The load both benchmarks put on the cluster, from their {@code name=value} options: requests
     * of {@code prompt} + {@code tokens}, {@code concurrency} at once, for {@code rounds} rounds,
     * with {@code threads} compute threads per service.
     */
    record Load(int concurrency, int requests, int prompt, int tokens, int rounds, int threads) {
        static Load of(Map<String, String> o) {
            return new Load(Integer.parseInt(o.get("concurrency")), Integer.parseInt(o.get("requests")),
                    Integer.parseInt(o.get("prompt")), Integer.parseInt(o.get("tokens")), Integer.parseInt(o.get("rounds")),
                    Integer.parseInt(o.get("threads")));
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d requests, %d at once, %d prompt tokens, %d completion tokens each; "
                    + "%d rounds", requests, concurrency, prompt, tokens, rounds);
        }
    }

    /** Puts each {@code name=value} of {@code args[1..]} into {@code options}, refusing a name it lacks. */
    static void options(String[] args, Map<String, String> options) {
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            if (kv.length != 2 || !options.containsKey(kv[0])) {
                throw new IllegalArgumentException("unknown option " + args[i] + "; options: " + options.keySet());
            }
            options.put(kv[0], kv[1]);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
