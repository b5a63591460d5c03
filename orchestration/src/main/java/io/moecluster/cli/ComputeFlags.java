package io.moecluster.cli;

import io.moecluster.core.backend.ComputeBackends;
import picocli.CommandLine.Option;

/** Where a command's model computes: threads and compute backend (every command that runs a model part). */
final class ComputeFlags {
    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "Compute threads; 0 = one per core (default: ${DEFAULT-VALUE}).")
    int threads;

    /** One option, two names: {@code --device} (as the GPU work calls it) and {@code --backend}, its alias. */
    @Option(names = {"--device", "--backend"}, defaultValue = ComputeBackends.DEFAULT, paramLabel = "DEVICE",
            description = "Where the expert FFNs (and dense MLPs) compute: cpu, cuda (GPU 0) or cuda:N "
                    + "(default: ${DEFAULT-VALUE}; --backend is another name for this option; "
                    + "'moe backends' lists the backends installed and whether each can run here).")
    String device;
}
