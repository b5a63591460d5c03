package io.moecluster.cli;

import io.moecluster.cli.cluster.LocalExpertScaler;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "drain", mixinStandardHelpOptions = true,
        description = "Stops new batches to one expert service of the local cluster, waits until the router has none "
                + "outstanding there, then stops it. Refused if an expert would be left without a replica.")
final class DrainCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "INSTANCE", description = "The expert service id (see moe status).")
    String instance;

    @Option(names = "--force", description = "Drain even if an expert is left without a replica (its requests then fail).")
    boolean force;

    @Option(names = "--timeout-s", defaultValue = "60", paramLabel = "S",
            description = "How long to wait for the router and the service (default: ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    @Mixin
    StateDirFlag stateDir;

    @Mixin
    ClientSecurityFlags client;

    @Override
    public Integer call() throws Exception {
        try (LocalExpertScaler scaler = new LocalExpertScaler(stateDir.state(), spec.commandLine().getOut(),
                Duration.ofSeconds(timeoutSeconds), client.security())) {
            scaler.drain(instance, force);
        }
        return 0;
    }
}
