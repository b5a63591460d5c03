package io.moecluster.cli;

import io.moecluster.core.backend.Availability;
import io.moecluster.core.backend.ComputeBackendProvider;
import io.moecluster.core.backend.ComputeBackends;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

@Command(name = "backends", mixinStandardHelpOptions = true,
        description = "Lists the compute backends installed (--device takes their names) and whether each can run "
                + "on this machine, with the reasons when it cannot.")
final class BackendsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        for (ComputeBackendProvider p : ComputeBackends.providers()) {
            Availability a = p.availability();
            String marker = p.name().equals(ComputeBackends.DEFAULT) ? " (default)" : "";
            out.printf(Locale.ROOT, "%-6s %s%s%s%n", p.name(), a.available() ? "available" : "unavailable: " + a.describe(),
                    marker, a.available() && !p.description().isEmpty() ? "; " + p.description() : "");
        }
        return 0;
    }
}
