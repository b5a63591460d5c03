package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import io.moecluster.cli.cluster.LocalClusterLauncher;
import io.moecluster.cli.cluster.LocalClusterStopper;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import io.moecluster.discovery.ClusterSpec;
import io.moecluster.router.chat.ChatTemplate;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "The whole system on a generated model, in one command: writes a random-weight model (once), "
                + "starts a local cluster (router, attention and expert services as processes over Aeron), streams a "
                + "completion through the gRPC API, chats through the OpenAI-compatible HTTP API, prints the cluster status, "
                + "and stops the cluster. Random weights "
                + "make random text; the point is the machinery.")
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR", description = "Where the demo model lives (default: models/demo-ARCH-PRESET).")
    Path dir;

    @Option(names = "--arch", defaultValue = "mixtral", converter = Converters.ArchitectureConverter.class,
            paramLabel = "ARCH", description = "mixtral, qwen2_moe or deepseek_v3 (default: ${DEFAULT-VALUE}).")
    Architecture arch;

    @Option(names = "--dtype", defaultValue = "bf16", converter = Converters.DTypeConverter.class, paramLabel = "DTYPE",
            description = "Weights of a model generated here: f32, f16, bf16 or f8_e4m3 (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Option(names = "--experts-per-service", defaultValue = "0", paramLabel = "N",
            description = "Experts per expert service; 0 = 4, or half of them when the model has more than 8 "
                    + "routed experts, so that two expert services host them (default: ${DEFAULT-VALUE}).")
    int expertsPerService;

    @Option(names = "--preset", defaultValue = "bench", converter = Converters.PresetConverter.class,
            paramLabel = "PRESET", description = "bench (RakutenAI-2.0-8x7B scaled down: ~1 GB on disk, a 32000-token "
                    + "vocabulary) or tiny (259 byte tokens, prints raw bytes) (default: ${DEFAULT-VALUE}).")
    Preset preset;

    @Option(names = "--prompt", defaultValue = "The quick brown fox", paramLabel = "TEXT",
            description = "Prompt (default: ${DEFAULT-VALUE}).")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "32", paramLabel = "N", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--embedded-router", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run the MoE router inside the attention service, as 'moe up' does by default; "
                    + "--no-embedded-router routes through the router-service (default: ${DEFAULT-VALUE}).")
    boolean embeddedRouter;

    @Option(names = "--state-dir", defaultValue = ".moe-demo", paramLabel = "DIR",
            description = "State of the demo cluster (default: ${DEFAULT-VALUE}).")
    Path stateDir;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (expertsPerService < 0) {
            throw new IllegalArgumentException("--experts-per-service must be >= 0 (0 = auto), got " + expertsPerService);
        }
        Path model = dir != null ? dir : Path.of("models", "demo-" + arch.modelType() + "-" + preset.id()
                + (dtype == DType.BF16 ? "" : "-" + dtype.safetensorsName().toLowerCase(Locale.ROOT)));
        if (!Files.isRegularFile(model.resolve("config.json"))) {
            out.println("== generating a random " + arch.modelType() + " " + preset.id() + " " + dtype + " model in " + model);
            out.flush();
            RandomModelGenerator.generate(arch, preset, dtype, 1, model, false, 0);
        } else {
            out.println("== using the model in " + model);
        }
        ModelConfig config = ModelConfig.load(model);
        int perService = expertsPerService > 0 ? expertsPerService
                : config.numExperts() <= 8 ? 4 : (config.expertSlots() + 1) / 2;
        out.println("== moe up --model " + model + " --experts-per-service " + perService
                + (embeddedRouter ? "" : " --no-embedded-router") + " --state-dir " + stateDir);
        out.flush();
        ClusterState state = new ClusterState(stateDir);
        LocalClusterLauncher launcher = new LocalClusterLauncher(state, new LocalClusterLauncher.Options(model,
                perService, embeddedRouter, 0, 0, 256, Duration.ofSeconds(180)));
        ClusterSpec cluster = launcher.start();
        try {
            String server = cluster.router().host() + ":" + cluster.router().grpcPort();
            out.println("== moe generate --server " + server + " --prompt \"" + prompt + "\" --max-tokens " + maxTokens);
            out.flush();
            int rc = subcommand(new GenerateCommand(), out).execute("--server", server, "--prompt", prompt,
                    "--max-tokens", Integer.toString(maxTokens), "--temperature", "0.8", "--seed", "1");
            if (rc != 0) {
                return rc;
            }
            if (ChatTemplate.load(model, null).isPresent()) {
                String http = launcher.httpUrl();
                out.println("== moe chat --server " + http + " --message \"Hello!\" --max-tokens " + maxTokens
                        + "   (the OpenAI-compatible API: POST " + http + "/chat/completions)");
                out.flush();
                rc = subcommand(new ChatCommand(), out).execute("--server", http, "--message", "Hello!", "--max-tokens",
                        Integer.toString(maxTokens), "--temperature", "0.8", "--seed", "1");
                if (rc != 0) {
                    return rc;
                }
            } else {
                out.println("== (no chat: " + model + " has no chat template; delete it to make a new one that has)");
            }
            out.println("== moe status --server " + server);
            out.flush();
            return subcommand(new StatusCommand(), out).execute("--server", server);
        } finally {
            out.println("== moe down --state-dir " + stateDir);
            out.flush();
            LocalClusterStopper.stop(state, state.pids(), Duration.ofSeconds(15));
        }
    }

    private CommandLine subcommand(Object command, PrintWriter out) {
        CommandLine cli = new CommandLine(command);
        cli.setOut(out);
        cli.setErr(spec.commandLine().getErr());
        cli.setExecutionExceptionHandler(spec.commandLine().getExecutionExceptionHandler());
        return cli;
    }
}
