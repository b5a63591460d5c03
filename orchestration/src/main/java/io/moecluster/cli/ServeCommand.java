package io.moecluster.cli;

import io.moecluster.attention.AttentionNode;
import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.discovery.ExpertMetadata;
import io.moecluster.discovery.IdRanges;
import io.moecluster.discovery.ServiceInstance;
import io.moecluster.discovery.ServiceRegistry;
import io.moecluster.discovery.ServiceRole;
import io.moecluster.discovery.StaticFileRegistry;
import io.moecluster.dispatch.MoeRoutingContext;
import io.moecluster.expert.ExpertNode;
import io.moecluster.router.RouterNode;
import io.moecluster.service.AeronLoss;
import io.moecluster.service.ServiceContext;
import io.moecluster.service.security.TlsSettings;
import io.moecluster.telemetry.LayerSampling;
import io.moecluster.telemetry.TracingOptions;
import io.moecluster.transport.DataPlaneAuth;
import io.moecluster.transport.EmbeddedMediaDriver;
import io.moecluster.transport.IdleStrategies;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * Runs one service of a cluster in this process until SIGTERM. {@code moe up} starts these; an
 * operator can start them by hand (or from a container) with the same flags.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Runs one cluster service in this process until it is stopped (SIGTERM).",
        subcommands = {ServeCommand.MediaDriver.class, ServeCommand.Expert.class, ServeCommand.Attention.class,
            ServeCommand.Router.class})
final class ServeCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(),
                "missing service (media-driver, expert, attention or router)");
    }

    /** Keeps a started service up until the JVM is asked to stop, then closes it. */
    static int serveUntilStopped(AutoCloseable service, String id, Path stateDir, PrintWriter out, String banner)
            throws Exception {
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            try {
                service.close();
            } catch (Exception e) {
                System.err.println("moe serve " + id + ": error while stopping: " + e);
            } finally {
                stopped.countDown();
            }
        }, "shutdown-" + id);
        Runtime.getRuntime().addShutdownHook(hook);
        out.println(banner);
        out.flush();
        ClusterState.markReady(stateDir, id);
        stopped.await();
        return 0;
    }

    static class ClusterFlags {
        @Option(names = "--cluster", required = true, paramLabel = "FILE", description = "The cluster file (moe up writes one).")
        Path cluster;

        @Option(names = "--state-dir", paramLabel = "DIR", description = "Where to write this service's ready marker (moe up sets it).")
        Path stateDir;

        @Option(names = "--metrics-port", defaultValue = "0", paramLabel = "PORT",
                description = "Serve Prometheus metrics at http://HOST:PORT/metrics; 0 = none (default: ${DEFAULT-VALUE}).")
        int metricsPort;

        @Option(names = "--discovery", defaultValue = "file", paramLabel = "KIND",
                description = "Where expert services are found: file (the --cluster file, re-read when it changes) "
                        + "or consul (default: ${DEFAULT-VALUE}).")
        String discovery;

        @Option(names = "--consul", defaultValue = "${env:CONSUL_HTTP_ADDR:-http://127.0.0.1:8500}", paramLabel = "URL",
                description = "The Consul agent's HTTP address with --discovery consul (default: $CONSUL_HTTP_ADDR or "
                        + "http://127.0.0.1:8500).")
        String consul;

        @Option(names = "--data-plane-secret-file", paramLabel = "FILE",
                description = "The cluster's data-plane secret (one per line; the first signs, all verify): every Aeron "
                        + "message is signed and checked with it. Default: $" + DataPlaneAuth.ENV_SECRET_FILE + ", else $"
                        + DataPlaneAuth.ENV_SECRET + ", else none (unauthenticated; README, Security).")
        Path dataPlaneSecretFile;

        @Option(names = "--tls-cert", paramLabel = "FILE",
                description = "This service's certificate chain (PEM): TLS on its gRPC and HTTP ports, and its client "
                        + "certificate towards the services it calls. Re-read when it changes.")
        Path tlsCert;

        @Option(names = "--tls-key", paramLabel = "FILE", description = "The private key of --tls-cert (PKCS #8 PEM).")
        Path tlsKey;

        @Option(names = "--tls-ca", paramLabel = "FILE",
                description = "The CA certificates (PEM) of the cluster: client certificates are checked against them "
                        + "(mutual TLS; required by the attention service's internal API), and so are the services this "
                        + "one calls. Without it: no client certificates, servers checked against the JDK's trust store.")
        Path tlsCa;

        @Option(names = "--tls-reload-s", defaultValue = "60", paramLabel = "S",
                description = "How often the TLS files are checked for changes (default: ${DEFAULT-VALUE}).")
        long tlsReloadSeconds;

        @Option(names = "--health-port", defaultValue = "0", paramLabel = "PORT",
                description = "Also serve gRPC health alone on this plaintext port, for probes that speak no TLS "
                        + "(Kubernetes' gRPC probes); 0 = none (default: ${DEFAULT-VALUE}).")
        int healthPort;

        private ServiceRegistry registry;

        /** One registry per process: what it watches and what it announces go through the same client. */
        ServiceRegistry registry() {
            if (registry == null) {
                registry = switch (discovery) {
                    case "file" -> new StaticFileRegistry(cluster);
                    case "consul" -> Registries.consul(consul);
                    default -> throw new IllegalArgumentException("--discovery: '" + discovery + "' is not file or consul");
                };
            }
            return registry;
        }

        /**
         * Announces this service (a no-op with the cluster file, which moe up writes) and returns what
         * stops it: leave the registry first, so no new work arrives, then stop the service.
         */
        AutoCloseable announce(ServiceInstance self, AutoCloseable service) {
            ServiceRegistry r = registry();
            ServiceRegistry.Registration registration = r.register(self);
            return () -> {
                registration.close();
                try {
                    service.close();
                } finally {
                    r.close();
                }
            };
        }

        @Option(names = "--trace-layers", paramLabel = "all|none|every:N",
                description = "Per-layer spans (MoE layer, dispatch, expert batches) for every Nth scheduling step of an "
                        + "attention service; step spans are always kept. Default: $MOE_TRACE_LAYERS, else every:"
                        + LayerSampling.DEFAULT_EVERY + ". Tracing itself is on only when "
                        + "OTEL_TRACES_EXPORTER or an OTLP endpoint is set (README, Tracing).")
        String traceLayers;

        TracingOptions tracing() {
            TracingOptions t = TracingOptions.fromEnvironment();
            return traceLayers == null ? t : t.withLayers(LayerSampling.parse(traceLayers));
        }

        /**
         * What {@code moe serve} does when the service's Aeron client dies under it (a stall past the
         * driver's liveness timeout, a driver that went away): the service has already said
         * NOT_SERVING and ended its calls; it records why (for {@code moe status}) and exits with
         * status {@value AeronLoss#EXIT_STATUS}, so that its supervisor ({@code moe up}, Kubernetes)
         * starts a fresh process with a fresh client. If stopping hangs, it halts after 30 s.
         */
        Consumer<Throwable> exitOnAeronLoss(String id) {
            return cause -> Thread.ofPlatform().name("exit-" + id).start(() -> {
                ClusterState.writeExitReason(stateDir, id, "its Aeron client was lost: " + cause);
                Thread.ofPlatform().daemon().name("halt-" + id).start(() -> {
                    try {
                        Thread.sleep(30_000);
                    } catch (InterruptedException e) {
                        return;
                    }
                    Runtime.getRuntime().halt(AeronLoss.EXIT_STATUS);
                });
                System.exit(AeronLoss.EXIT_STATUS);
            });
        }

        /** These flags' settings on a service's context, with {@code cluster} (the --cluster file, maybe amended). */
        <C extends ServiceContext<C>> C applyTo(C context, ClusterSpec cluster) {
            return context.cluster(cluster).metricsPort(metricsPort).tracing(tracing())
                    .dataPlaneSecretFile(dataPlaneSecretFile)
                    .tls(TlsSettings.of(tlsCert, tlsKey, tlsCa, Duration.ofSeconds(tlsReloadSeconds)))
                    .healthPort(healthPort);
        }

        /**
         * Announces the service, writes its ready marker {@code readyId} and serves until SIGTERM;
         * then it leaves the registry first, so no new work arrives, and stops.
         */
        int serve(ServiceInstance self, AutoCloseable service, String readyId, PrintWriter out, String banner)
                throws Exception {
            return serveUntilStopped(announce(self, service), readyId, stateDir, out, banner);
        }
    }

    /** How a MoE router (the router-service's, or an embedded one) treats slow expert replicas. */
    static class ReplicaFlags {
        @Option(names = "--replica-timeout-ms", defaultValue = "2000", paramLabel = "MS",
                description = "How long one expert replica may take with a batch before the batch also goes to another "
                        + "replica of that expert (default: ${DEFAULT-VALUE}).")
        long replicaTimeoutMs;

        /** The replica timeout and the registry of --discovery on a MoE-routing service's context. */
        <C extends MoeRoutingContext<C>> C applyTo(C context, ClusterFlags flags) {
            return context.replicaTimeout(Duration.ofMillis(replicaTimeoutMs)).registry(flags.registry());
        }
    }

    @Command(name = "media-driver", mixinStandardHelpOptions = true,
            description = "The Aeron media driver every service of this host shares.")
    static final class MediaDriver implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        ClusterFlags flags;

        @Option(names = "--idle", defaultValue = "backoff", paramLabel = "STRATEGY",
                description = "Driver idle strategy: backoff, sleeping:MICROS, yielding or busy-spin (default: ${DEFAULT-VALUE}).")
        String idle;

        @Override
        public Integer call() throws Exception {
            ClusterSpec c = ClusterSpec.read(flags.cluster);
            EmbeddedMediaDriver driver = new EmbeddedMediaDriver(Path.of(c.aeronDir()), IdleStrategies.parse(idle),
                    EmbeddedMediaDriver.DEFAULT_IPC_TERM_LENGTH, EmbeddedMediaDriver.DEFAULT_UDP_TERM_LENGTH);
            return serveUntilStopped(driver, "media-driver", flags.stateDir, spec.commandLine().getOut(),
                    "media-driver running in " + c.aeronDir() + " (largest message " + driver.maxMessageBytes() + " bytes)");
        }
    }

    @Command(name = "expert", mixinStandardHelpOptions = true,
            description = "An expert service: the experts the cluster file gives this id, over Aeron.")
    static final class Expert implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        ClusterFlags flags;

        @Option(names = "--id", required = true, paramLabel = "ID", description = "This service's id in the cluster file.")
        String id;

        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model directory.")
        Path model;

        @CommandLine.Mixin
        ComputeFlags compute;

        @Option(names = "--max-rows", defaultValue = "" + EngineOptions.DEFAULT_MAX_BATCH_TOKENS, paramLabel = "N",
                description = "Most tokens in one batch; at least the attention services' --max-batch-tokens (default: ${DEFAULT-VALUE}).")
        int maxRows;

        @Option(names = "--experts", paramLabel = "IDS",
                description = "Experts to host, e.g. 0-3 (default: the cluster file's entry for --id; the router routes by its own copy of that file).")
        String experts;

        @Option(names = "--layers", paramLabel = "A-B", description = "Layer range to host (default: the cluster file's entry).")
        String layers;

        @Option(names = "--stream-id", paramLabel = "N",
                description = "The Aeron stream to read (default: the cluster file's entry; required for a service the file does not list).")
        Integer streamId;

        @Option(names = "--channel", paramLabel = "CHANNEL",
                description = "The Aeron channel to read, e.g. aeron:udp?endpoint=10.0.0.5:40100 (default: the cluster file's entry or channel).")
        String channel;

        @Option(names = "--grpc-port", defaultValue = "0", paramLabel = "PORT",
                description = "Serve the gRPC health service on this port, all interfaces (for probes); 0 = none (default: ${DEFAULT-VALUE}).")
        int grpcPort;

        @Option(names = "--drain-timeout-s", defaultValue = "30", paramLabel = "S",
                description = "On SIGTERM, serve batches still arriving for up to this long before stopping (default: ${DEFAULT-VALUE}).")
        int drainTimeoutSeconds;

        @Override
        public Integer call() throws Exception {
            ClusterSpec cluster = withOverrides(ClusterSpec.read(flags.cluster), engineConfig());
            ExpertNode node = ExpertNode.launch(flags.applyTo(new ExpertNode.Context(), cluster)
                    .onAeronLost(flags.exitOnAeronLoss(id)).id(id).model(model)
                    .threads(compute.threads).device(compute.device).maxRows(maxRows));
            int healthPort = grpcPort > 0 || flags.healthPort > 0 ? node.serveHealth("0.0.0.0", grpcPort) : 0;
            ClusterSpec.Expert self = cluster.expertService(id);
            String channel = cluster.channelOf(self);
            // SIGTERM: leave the registry, then drain (batches routers sent before they dropped this
            // service are answered), then stop.
            return flags.serve(new ServiceInstance(id, ServiceRole.EXPERT, hostOf(channel), healthPort,
                            ExpertMetadata.of(self, channel)),
                    () -> node.drainAndClose(Duration.ofMillis(500), Duration.ofSeconds(drainTimeoutSeconds)),
                    id, spec.commandLine().getOut(), node.worker().describe());
        }

        /** The host of a UDP channel's endpoint, else loopback (IPC is one host). */
        static String hostOf(String channel) {
            Matcher m = Pattern.compile("endpoint=([^:|]+):").matcher(channel);
            return m.find() ? m.group(1) : "127.0.0.1";
        }

        private ModelConfig engineConfig() {
            return ModelConfig.load(model);
        }

        /**
         * The cluster file with this service's entry replaced by --experts / --layers / --stream-id /
         * --channel where given, or added when the file does not list it (a replica {@code moe scale}
         * starts, or one a registry announces).
         */
        private ClusterSpec withOverrides(ClusterSpec c, ModelConfig config) {
            if (experts == null && layers == null && streamId == null && channel == null) {
                return c;
            }
            boolean listed = c.experts().stream().anyMatch(e -> e.id().equals(id));
            if (!listed && (experts == null || streamId == null)) {
                throw new IllegalArgumentException("the cluster file has no expert service '" + id
                        + "'; describe it with --experts and --stream-id (and --layers, --channel)");
            }
            ClusterSpec.Expert self = listed ? c.expertService(id)
                    : new ClusterSpec.Expert(id, List.of(0), 0, config.numLayers() - 1, streamId, null);
            List<Integer> ids = self.experts();
            if (experts != null) {
                int slots = config.expertSlots();
                ids = IdRanges.parse(experts, "--experts", slots).stream().boxed().toList();
            }
            int first = self.firstLayer();
            int last = self.lastLayer();
            if (layers != null) {
                BitSet l = IdRanges.parse(layers, "--layers", config.numLayers());
                first = l.nextSetBit(0);
                last = l.length() - 1;
                if (l.cardinality() != last - first + 1) {
                    throw new IllegalArgumentException("--layers: '" + layers + "' must be one contiguous range like 0-15");
                }
            }
            ClusterSpec.Expert replaced = new ClusterSpec.Expert(id, ids, first, last,
                    streamId != null ? streamId : self.streamId(), channel != null ? channel : self.channel());
            List<ClusterSpec.Expert> all = new ArrayList<>();
            for (ClusterSpec.Expert e : c.experts()) {
                all.add(e.id().equals(id) ? replaced : e);
            }
            if (!listed) {
                all.add(replaced);
            }
            return new ClusterSpec(c.aeronDir(), c.channel(), c.embeddedRouter(), c.router(), c.attention(), all);
        }
    }

    @Command(name = "attention", mixinStandardHelpOptions = true,
            description = "An attention service: KV cache, continuous batching, sampling; MoE layers go to the router.")
    static final class Attention implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        ClusterFlags flags;

        @Option(names = "--id", required = true, paramLabel = "ID", description = "This service's id in the cluster file.")
        String id;

        @CommandLine.Mixin
        EngineFlags engine;

        @Option(names = "--max-running", defaultValue = "" + AttentionNode.DEFAULT_MAX_RUNNING, paramLabel = "N",
                description = "Sequences decoding at once (default: ${DEFAULT-VALUE}).")
        int maxRunning;

        @Option(names = "--max-queued", defaultValue = "" + AttentionNode.DEFAULT_MAX_QUEUED, paramLabel = "N",
                description = "Requests waiting beyond those; more are refused (default: ${DEFAULT-VALUE}).")
        int maxQueued;

        @Option(names = "--moe-timeout-ms", defaultValue = "30000", paramLabel = "MS",
                description = "How long one MoE layer may take before the step fails (default: ${DEFAULT-VALUE}).")
        long moeTimeoutMs;

        @Option(names = "--micro-batches", defaultValue = "" + AttentionNode.DEFAULT_MICRO_BATCHES, paramLabel = "N",
                description = "1 runs each step whole; 2 splits a step of two or more sequences in two micro-batches "
                        + "that alternate between attention and the MoE layers (at the router-service, or with an "
                        + "embedded router at the expert services), so both compute at once; "
                        + "same greedy tokens (default: ${DEFAULT-VALUE}).")
        int microBatches;

        @CommandLine.Mixin
        ReplicaFlags replicas;

        @Override
        public Integer call() throws Exception {
            ClusterSpec cluster = ClusterSpec.read(flags.cluster);
            AttentionNode node = AttentionNode.launch(replicas.applyTo(flags.applyTo(new AttentionNode.Context(), cluster),
                    flags).onAeronLost(flags.exitOnAeronLoss(id)).id(id).model(engine.requireModel(spec)).engine(engine.options()).maxRunning(maxRunning)
                    .maxQueued(maxQueued).moeTimeout(Duration.ofMillis(moeTimeoutMs)).microBatches(microBatches));
            ClusterSpec.Attention self = cluster.attentionService(id);
            return flags.serve(new ServiceInstance(id, ServiceRole.ATTENTION, self.host(), self.grpcPort(), Map.of()),
                    node, id, spec.commandLine().getOut(), "attention-service " + id + " listening on " + node.address());
        }
    }

    @Command(name = "router", mixinStandardHelpOptions = true,
            description = "The router-service: the public gRPC API and, unless attention embeds it, the MoE router.")
    static final class Router implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @CommandLine.Mixin
        ClusterFlags flags;

        /** --model, and as the attention services': --max-batch-tokens, --max-seq-len; --threads and --device for the gates. */
        @CommandLine.Mixin
        EngineFlags engine;

        @Option(names = "--max-active-requests", defaultValue = "" + RouterNode.DEFAULT_MAX_ACTIVE_REQUESTS, paramLabel = "N",
                description = "Requests admitted at once; more get RESOURCE_EXHAUSTED (default: ${DEFAULT-VALUE}).")
        int maxActive;

        @Option(names = "--expert-timeout-ms", defaultValue = "10000", paramLabel = "MS",
                description = "How long an expert service may take to answer a batch (default: ${DEFAULT-VALUE}).")
        long expertTimeoutMs;

        @CommandLine.Mixin
        ReplicaFlags replicas;

        @Option(names = "--http-port", defaultValue = "0", paramLabel = "PORT",
                description = "Serve the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, "
                        + "/health, /metrics) on this port, on the router's host; 0 = off (default: ${DEFAULT-VALUE}).")
        int httpPort;

        @Option(names = "--chat-template", paramLabel = "FILE",
                description = "A Jinja chat template to use instead of the model's (tokenizer_config.json's chat_template).")
        Path chatTemplate;

        @Option(names = "--served-model-name", paramLabel = "NAME",
                description = "The model's name in the HTTP API (default: the model directory's name).")
        String servedModelName;

        @Option(names = "--api-tokens", paramLabel = "FILE",
                description = "Bearer tokens of the public APIs, one per line: NAME ROLE TOKEN (ROLE user or operator; "
                        + "TOKEN itself or sha256:HEX). With it, the Inference and HTTP APIs need a token (or a client "
                        + "certificate of --tls-ca), the Admin API and /metrics an operator's. Re-read when it changes.")
        Path apiTokens;

        @Override
        public Integer call() throws Exception {
            ClusterSpec cluster = ClusterSpec.read(flags.cluster);
            RouterNode node = RouterNode.launch(replicas.applyTo(flags.applyTo(new RouterNode.Context(), cluster), flags)
                    .onAeronLost(flags.exitOnAeronLoss("router")).model(engine.requireModel(spec)).maxActiveRequests(maxActive).maxSeqLen(engine.maxSeqLen)
                    .maxBatchTokens(engine.maxBatchTokens).threads(engine.compute.threads).device(engine.compute.device)
                    .expertTimeout(Duration.ofMillis(expertTimeoutMs)).httpPort(httpPort).chatTemplate(chatTemplate)
                    .servedModelName(servedModelName).apiTokens(apiTokens));
            ClusterSpec.Router self = cluster.router();
            return flags.serve(new ServiceInstance(self.id(), ServiceRole.ROUTER, self.host(), self.grpcPort(), Map.of()),
                    node, "router", spec.commandLine().getOut(), "router-service listening on " + node.address()
                            + (node.httpUrl() == null ? "" : "; OpenAI-compatible API on " + node.httpUrl()));
        }
    }
}
