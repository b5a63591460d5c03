package io.moecluster.cli;

import io.grpc.ManagedChannel;
import io.moecluster.service.security.ClientSecurity;
import io.moecluster.cli.cluster.AutoscalePolicy;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalExpertScaler;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.proto.v1.AdminGrpc;
import io.moecluster.proto.v1.ClusterStatus;
import io.moecluster.proto.v1.ClusterStatusRequest;
import io.moecluster.proto.v1.ExpertLoad;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "autoscale", mixinStandardHelpOptions = true,
        description = "Watches the local cluster's tokens per expert and adds a replica to an expert whose share of the "
                + "routed tokens stays above --threshold (the router-service's status reports the rates: its own, or the "
                + "sum of the attention services' embedded routers).")
final class AutoscaleCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--threshold", defaultValue = "0.25", paramLabel = "SHARE",
            description = "Share of all routed tokens (0-1) that makes an expert hot; uniform top-k load gives 1/num_experts "
                    + "(default: ${DEFAULT-VALUE}).")
    double threshold;

    @Option(names = "--sustain", defaultValue = "3", paramLabel = "N",
            description = "Consecutive hot samples before a replica is added (default: ${DEFAULT-VALUE}).")
    int sustain;

    @Option(names = "--interval-s", defaultValue = "5", paramLabel = "S", description = "Seconds between samples (default: ${DEFAULT-VALUE}).")
    int intervalSeconds;

    @Option(names = "--max-replicas", defaultValue = "3", paramLabel = "N",
            description = "Never more replicas of one expert than this (default: ${DEFAULT-VALUE}).")
    int maxReplicas;

    @Option(names = "--min-tokens-per-second", defaultValue = "1", paramLabel = "R",
            description = "Below this total the cluster counts as idle and nothing is decided (default: ${DEFAULT-VALUE}).")
    double minRate;

    @Option(names = "--duration-s", defaultValue = "0", paramLabel = "S", description = "Stop after this long; 0 = until interrupted.")
    int durationSeconds;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    @Override
    public Integer call() throws Exception {
        ClusterState state = stateDir.state();
        ClusterSpec cluster = state.spec();
        AutoscalePolicy policy = new AutoscalePolicy(threshold, sustain, maxReplicas, minRate);
        PrintWriter out = spec.commandLine().getOut();
        long end = durationSeconds > 0 ? System.nanoTime() + TimeUnit.SECONDS.toNanos(durationSeconds) : Long.MAX_VALUE;
        ClientSecurity security = client.security();
        ManagedChannel channel = security.channel(cluster.router().host(), cluster.router().grpcPort());
        try (LocalExpertScaler scaler = new LocalExpertScaler(state, out, Duration.ofSeconds(180), security)) {
            out.printf(Locale.ROOT, "autoscale: a replica for any expert above %.0f%% of routed tokens for %d samples "
                    + "%d s apart (at most %d replicas)%n", threshold * 100, sustain, intervalSeconds, maxReplicas);
            out.flush();
            while (System.nanoTime() < end) {
                ClusterStatus s = AdminGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .getClusterStatus(ClusterStatusRequest.getDefaultInstance());
                double[] rates = s.getExpertLoadList().stream().mapToDouble(ExpertLoad::getTokensPerSecond).toArray();
                int[] replicas = new int[rates.length];
                ClusterSpec now = state.spec();
                for (int e = 0; e < replicas.length; e++) {
                    replicas[e] = LocalExpertScaler.hosting(now, e).size();
                }
                int hot = policy.observe(rates, replicas);
                if (hot >= 0) {
                    out.printf(Locale.ROOT, "expert %d has %.0f%% of routed tokens; adding replica %d%n", hot,
                            100 * rates[hot] / Arrays.stream(rates).sum(), replicas[hot] + 1);
                    out.flush();
                    scaler.scale(hot, replicas[hot] + 1);
                }
                Thread.sleep(TimeUnit.SECONDS.toMillis(intervalSeconds));
            }
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        return 0;
    }
}
