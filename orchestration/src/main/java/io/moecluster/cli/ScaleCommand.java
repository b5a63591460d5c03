package io.moecluster.cli;

import io.moecluster.cli.cluster.LocalExpertScaler;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "scale", mixinStandardHelpOptions = true,
        description = "Sets how many expert services of the local cluster host one expert: new replicas are started "
                + "and take traffic without a restart; surplus ones are drained (no request is lost).")
final class ScaleCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--expert", required = true, paramLabel = "E", description = "The expert id (the shared expert is num_experts).")
    int expert;

    @Option(names = "--replicas", required = true, paramLabel = "N", description = "Expert services that should host it.")
    int replicas;

    @Option(names = "--timeout-s", defaultValue = "180", paramLabel = "S",
            description = "How long starting or draining one replica may take (default: ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    @Override
    public Integer call() throws Exception {
        try (LocalExpertScaler scaler = new LocalExpertScaler(stateDir.state(), spec.commandLine().getOut(),
                Duration.ofSeconds(timeoutSeconds), client.security())) {
            scaler.scale(expert, replicas);
        }
        return 0;
    }
}
