package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalClusterLauncher;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.IdRanges;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "up", mixinStandardHelpOptions = true,
        description = "Starts a local cluster as separate processes (media driver, expert services, attention service, "
                + "router-service), waits until it serves, and prints the gRPC address and the OpenAI-compatible API's URL. "
                + "Stop it with 'moe down'.")
final class UpCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model directory.")
    Path model;

    @Option(names = "--experts-per-service", defaultValue = "0", paramLabel = "N",
            description = "Experts each expert service hosts (the shared expert counts as one); 0 = all of them in "
                    + "one expert service, the faster layout on one host, whose services share its cores "
                    + "(default: ${DEFAULT-VALUE}).")
    int expertsPerService;

    @Option(names = "--embedded-router", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run the MoE router inside the attention service, which then sends its token rows to the "
                    + "expert services itself; --no-embedded-router routes every MoE layer through the router-service "
                    + "instead, one more hop. Embedded is "
                    + "the faster layout on one host (default: ${DEFAULT-VALUE}).")
    boolean embeddedRouter;

    @Option(names = "--grpc-port", defaultValue = "0", paramLabel = "PORT", description = "The public gRPC port; 0 picks a free one.")
    int grpcPort;

    @Option(names = "--http-port", defaultValue = "0", paramLabel = "PORT",
            description = "The router's OpenAI-compatible HTTP API; 0 picks a free port, -1 turns it off (default: ${DEFAULT-VALUE}).")
    int httpPort;

    @Option(names = "--chat-template", paramLabel = "FILE",
            description = "A Jinja chat template for the HTTP API instead of the model's.")
    Path chatTemplate;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "Compute threads of each service; 0 = the cores shared out among the services, at least two "
                    + "on a host with two or more (pass 1 on a host other work keeps busy) (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--max-batch-tokens", defaultValue = "256", paramLabel = "N",
            description = "Tokens per forward step (default: ${DEFAULT-VALUE}).")
    int maxBatchTokens;

    @Option(names = "--micro-batches", paramLabel = "N",
            description = "The attention services' micro-batches per step: 2 splits a step of two or more sequences "
                    + "in two that alternate (ping-pong), one's attention running while the other's MoE layer is at "
                    + "the expert services (or the router-service); 1 runs each step whole (default: 1 with the "
                    + "embedded router, whose halves would compete for this host's cores, 2 with --no-embedded-router).")
    Integer microBatches;

    @Option(names = "--start-timeout-s", defaultValue = "180", paramLabel = "S",
            description = "How long each service may take to start (default: ${DEFAULT-VALUE}).")
    int startTimeoutSeconds;

    @Option(names = "--heap", paramLabel = "ROLE=SIZE",
            description = "A role's JVM heap (-Xmx) instead of the default (media-driver=128m, expert=512m, attention=1g, "
                    + "router=1g, supervisor=64m), e.g. --heap router=2g; repeatable.")
    Map<String, String> heaps = new LinkedHashMap<>();

    @Option(names = "--no-supervise",
            description = "Start no supervisor: a service that exits stays down (by default one is restarted, with backoff).")
    boolean noSupervise;

    @Mixin
    StateDirFlag stateDir;

    @Override
    public Integer call() throws Exception {
        ClusterState state = stateDir.state();
        if (state.exists() && state.pids().values().stream().anyMatch(pid -> ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))) {
            throw new IllegalArgumentException("a cluster is already running from " + state.dir() + " (run 'moe down' first)");
        }
        PrintWriter out = spec.commandLine().getOut();
        long start = System.nanoTime();
        if (chatTemplate != null && !Files.isRegularFile(chatTemplate)) {
            throw new IllegalArgumentException("--chat-template: " + chatTemplate + " is not a file");
        }
        LocalClusterLauncher launcher = new LocalClusterLauncher(state, new LocalClusterLauncher.Options(model,
                expertsPerService, embeddedRouter, grpcPort, threads, maxBatchTokens, Duration.ofSeconds(startTimeoutSeconds),
                httpPort, chatTemplate, heaps, !noSupervise,
                microBatches != null ? microBatches : LocalClusterLauncher.Options.defaultMicroBatches(embeddedRouter)));
        ClusterSpec c = launcher.start();
        if (!noSupervise) {
            launcher.startSupervisor();
        }
        for (ClusterSpec.Expert e : c.experts()) {
            BitSet ids = new BitSet();
            e.experts().forEach(ids::set);
            out.printf("  %-10s experts %s%n", e.id(), IdRanges.format(ids));
        }
        out.printf("  %-10s %s:%d%s%n", "attention", c.attention().getFirst().host(), c.attention().getFirst().grpcPort(),
                c.embeddedRouter() ? " (embedded MoE router)" : "");
        launcher.metricsEndpoints().forEach((id, url) -> out.printf("  %-10s metrics %s%n", id, url));
        out.printf("  %-10s %s%n", "supervisor", noSupervise ? "none (--no-supervise): a service that exits stays down"
                : "restarts a service that exits (backoff 1 s doubling to 30 s; 'moe status' shows restarts)");
        // "gRPC API on HOST:PORT " stays as it was: scripts read the address from it.
        out.printf("cluster up in %.1f s: gRPC API on %s:%d %s(state in %s; stop with 'moe down')%n",
                (System.nanoTime() - start) / 1e9, c.router().host(), c.router().grpcPort(),
                launcher.httpUrl() == null ? "" : "and OpenAI-compatible API on " + launcher.httpUrl() + " ", state.dir());
        return 0;
    }
}
