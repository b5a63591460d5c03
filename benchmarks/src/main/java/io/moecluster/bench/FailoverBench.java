package io.moecluster.bench;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalClusterLauncher;
import io.moecluster.cli.cluster.LocalClusterStopper;
import io.moecluster.cli.cluster.LocalExpertScaler;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.GenerateRequest;
import io.moecluster.proto.v1.GenerateStreamResponse;
import io.moecluster.proto.v1.InferenceGrpc;
import io.moecluster.proto.v1.SamplingParameters;
import io.moecluster.proto.v1.TokenIds;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Failover under load on a local cluster of real processes: expert 3 gets a second replica, a
 * steady load of streaming requests runs, and the replica is killed with SIGKILL (no goodbye, as
 * a crashed host). Reports the time from the kill to the first batch re-dispatched to the other
 * replica, tokens/s per second before, during and after, and whether any request was lost.
 *
 * <pre>
 * java $FLAGS -cp benchmarks/target/benchmarks.jar io.moecluster.bench.FailoverBench MODEL_DIR [SECONDS] [KILL_AT_S]
 * </pre>
 */
public final class FailoverBench {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 45;
        int killAt = args.length > 2 ? Integer.parseInt(args[2]) : 15;
        int concurrency = 8;
        PrintWriter out = new PrintWriter(System.out, true);
        ClusterState state = new ClusterState(Files.createTempDirectory("moe-failover"));
        LocalClusterLauncher launcher = new LocalClusterLauncher(state, new LocalClusterLauncher.Options(model, 4, false, 0,
                1, 64, Duration.ofSeconds(180)));
        ClusterSpec spec = launcher.start();
        ManagedChannel channel = NettyChannelBuilder.forAddress(spec.router().host(), spec.router().grpcPort())
                .usePlaintext().build();
        ExecutorService clients = Executors.newFixedThreadPool(concurrency);
        try {
            try (LocalExpertScaler scaler = new LocalExpertScaler(state, out, Duration.ofSeconds(180))) {
                scaler.scale(3, 2);
            }
            AtomicLongArray perSecond = new AtomicLongArray(seconds + 30);
            AtomicLong failed = new AtomicLong();
            AtomicLong completed = new AtomicLong();
            long start = System.nanoTime();
            long stopAt = start + TimeUnit.SECONDS.toNanos(seconds);
            for (int c = 0; c < concurrency; c++) {
                int seed = c;
                clients.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    var stub = InferenceGrpc.newBlockingStub(channel);
                    while (System.nanoTime() < stopAt) {
                        TokenIds.Builder ids = TokenIds.newBuilder().addIds(1);
                        for (int i = 1; i < 32; i++) {
                            ids.addIds(3 + rnd.nextInt(32000 - 3));
                        }
                        GenerateRequest req = GenerateRequest.newBuilder().setTokenIds(ids)
                                .setSampling(SamplingParameters.newBuilder().setMaxTokens(48).setIgnoreEos(true)).build();
                        try {
                            Iterator<GenerateStreamResponse> it = stub.withDeadlineAfter(5, TimeUnit.MINUTES).generateStream(req);
                            int tokens = 0;
                            while (it.hasNext()) {
                                if (it.next().hasToken()) {
                                    tokens++;
                                    perSecond.incrementAndGet((int) ((System.nanoTime() - start) / 1_000_000_000L));
                                }
                            }
                            if (tokens == 48) {
                                completed.incrementAndGet();
                            } else {
                                failed.incrementAndGet();
                            }
                        } catch (StatusRuntimeException e) {
                            failed.incrementAndGet();
                            out.println("request failed: " + e.getStatus());
                        }
                    }
                    return null;
                });
            }
            Thread.sleep(TimeUnit.SECONDS.toMillis(killAt));
            long pid = state.pids().get("expert-3-r1");
            var admin = AdminGrpc.newBlockingStub(channel);
            long before = admin.getClusterStatus(ClusterStatusRequest.getDefaultInstance()).getRedispatches();
            long killNanos = System.nanoTime();
            ProcessHandle.of(pid).orElseThrow().destroyForcibly();
            double failoverMs = Double.NaN;
            while (System.nanoTime() - killNanos < TimeUnit.SECONDS.toNanos(30)) {
                if (admin.getClusterStatus(ClusterStatusRequest.getDefaultInstance()).getRedispatches() > before) {
                    failoverMs = (System.nanoTime() - killNanos) / 1e6;
                    break;
                }
                Thread.sleep(10);
            }
            clients.shutdown();
            clients.awaitTermination(10, TimeUnit.MINUTES);
            int killSecond = (int) ((killNanos - start) / 1_000_000_000L);
            out.printf(Locale.ROOT, "killed expert-3-r1 (SIGKILL) at %.1f s; first re-dispatch %.0f ms later%n",
                    (killNanos - start) / 1e9, failoverMs);
            StringBuilder timeline = new StringBuilder();
            for (int s = 0; s < seconds; s++) {
                timeline.append(s == killSecond ? " [kill] " : " ").append(perSecond.get(s));
            }
            out.println("tokens per second:" + timeline);
            int failWindow = (int) Math.ceil(Math.max(1, failoverMs / 1000)) + 1;
            int afterFrom = killSecond + failWindow;
            out.printf(Locale.ROOT, "tokens/s before (s %d-%d) %.1f, during (s %d-%d) %.1f, after (s %d-%d) %.1f%n",
                    killSecond - 10, killSecond - 1, mean(perSecond, killSecond - 10, killSecond),
                    killSecond, afterFrom - 1, mean(perSecond, killSecond, afterFrom),
                    afterFrom, afterFrom + 9, mean(perSecond, afterFrom, afterFrom + 10));
            // Requests start and finish in waves (all prefill at once), which swings 10 s windows by
            // a few tokens/s; the means over the whole steady run before and after say more.
            int warm = Math.min(15, killSecond);
            out.printf(Locale.ROOT, "tokens/s whole run before (s %d-%d) %.1f, after (s %d-%d) %.1f%n",
                    warm, killSecond - 1, mean(perSecond, warm, killSecond),
                    afterFrom, seconds - 1, mean(perSecond, afterFrom, seconds));
            out.printf("requests completed %d, failed %d; re-dispatches %d%n", completed.get(), failed.get(),
                    admin.getClusterStatus(ClusterStatusRequest.getDefaultInstance()).getRedispatches());
        } finally {
            clients.shutdownNow();
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            LocalClusterStopper.stop(state, state.pids(), Duration.ofSeconds(10));
        }
    }

    private static double mean(AtomicLongArray a, int from, int to) {
        long n = 0;
        for (int i = from; i < to; i++) {
            n += a.get(i);
        }
        return to > from ? (double) n / (to - from) : Double.NaN;
    }
}
