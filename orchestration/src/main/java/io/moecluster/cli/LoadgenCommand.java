package io.moecluster.cli;

import io.grpc.ManagedChannel;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "loadgen", mixinStandardHelpOptions = true,
        description = "A bounded load against a cluster's gRPC API: concurrent GenerateStream requests of random "
                + "prompt tokens, greedy, EOS ignored. Reports tokens/s and the p50/p99 of time to first token and of "
                + "the gap between tokens.")
final class LoadgenCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--server", paramLabel = "HOST:PORT", description = "A router's gRPC address (default: the local cluster's).")
    String server;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    @Option(names = "--concurrency", defaultValue = "8", paramLabel = "N", description = "Requests in flight (default: ${DEFAULT-VALUE}).")
    int concurrency;

    @Option(names = "--requests", defaultValue = "16", paramLabel = "N", description = "Requests in all (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--prompt-tokens", defaultValue = "32", paramLabel = "N", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--max-tokens", defaultValue = "64", paramLabel = "N", description = "Tokens per request (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--vocab", defaultValue = "259", paramLabel = "N",
            description = "Prompt ids are drawn from [3, N) (default: ${DEFAULT-VALUE}; use the model's vocab size).")
    int vocab;

    record Result(long ttftNanos, long[] gaps, int tokens) {
    }

    @Override
    public Integer call() throws Exception {
        if (concurrency < 1 || requests < 1 || promptTokens < 1 || maxTokens < 2 || vocab < 4) {
            throw new IllegalArgumentException("need --concurrency, --requests, --prompt-tokens >= 1, --max-tokens >= 2, --vocab >= 4");
        }
        String target = server != null ? server : ServerAddress.local(stateDir.state());
        ManagedChannel channel = client.security().channel(target);
        ExecutorService clients = Executors.newFixedThreadPool(concurrency);
        try {
            SplittableRandom rnd = new SplittableRandom(42);
            List<GenerateRequest> all = new ArrayList<>();
            for (int r = 0; r < requests; r++) {
                TokenIds.Builder ids = TokenIds.newBuilder().addIds(1);
                for (int i = 1; i < promptTokens; i++) {
                    ids.addIds(3 + rnd.nextInt(vocab - 3));
                }
                all.add(GenerateRequest.newBuilder().setTokenIds(ids)
                        .setSampling(SamplingParameters.newBuilder().setMaxTokens(maxTokens).setIgnoreEos(true)).build());
            }
            var stub = InferenceGrpc.newBlockingStub(channel);
            long start = System.nanoTime();
            List<Future<Result>> futures = new ArrayList<>();
            for (GenerateRequest req : all) {
                futures.add(clients.submit(() -> stream(stub.withDeadlineAfter(10, TimeUnit.MINUTES), req)));
            }
            List<Result> results = new ArrayList<>();
            for (Future<Result> f : futures) {
                results.add(f.get());
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            report(results, seconds, target, spec.commandLine().getOut());
        } finally {
            clients.shutdownNow();
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        return 0;
    }

    private static Result stream(InferenceGrpc.InferenceBlockingStub stub, GenerateRequest req) {
        long sent = System.nanoTime();
        long last = 0;
        long ttft = 0;
        long[] gaps = new long[req.getSampling().getMaxTokens()];
        int tokens = 0;
        Iterator<GenerateStreamResponse> it = stub.generateStream(req);
        while (it.hasNext()) {
            GenerateStreamResponse r = it.next();
            if (!r.hasToken()) {
                continue;
            }
            long now = System.nanoTime();
            if (tokens == 0) {
                ttft = now - sent;
            } else if (tokens - 1 < gaps.length) {
                gaps[tokens - 1] = now - last;
            }
            last = now;
            tokens++;
        }
        return new Result(ttft, Arrays.copyOf(gaps, Math.max(0, tokens - 1)), tokens);
    }

    private void report(List<Result> results, double seconds, String target, PrintWriter out) {
        long[] ttft = results.stream().mapToLong(Result::ttftNanos).sorted().toArray();
        long[] gaps = results.stream().flatMapToLong(r -> Arrays.stream(r.gaps())).sorted().toArray();
        int tokens = results.stream().mapToInt(Result::tokens).sum();
        out.printf(Locale.ROOT, "%s: %d requests, concurrency %d, %d prompt + %d new tokens each%n", target,
                results.size(), concurrency, promptTokens, maxTokens);
        out.printf(Locale.ROOT, "  throughput        %10.2f tokens/s (%d tokens in %.2f s)%n", tokens / seconds, tokens, seconds);
        out.printf(Locale.ROOT, "  time to 1st token p50 %8.1f ms   p99 %8.1f ms%n", pct(ttft, 50), pct(ttft, 99));
        out.printf(Locale.ROOT, "  inter-token       p50 %8.2f ms   p99 %8.2f ms%n", pct(gaps, 50), pct(gaps, 99));
    }

    private static double pct(long[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1);
        return sorted[Math.max(0, i)] / 1e6;
    }
}
