package io.moecluster.cli;

import io.moecluster.core.backend.ComputeBackends;
import picocli.CommandLine.Option;

/** Where a command's model computes: threads and compute backend (every command that runs a model part). */
final class ComputeFlags {
    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "Compute threads; 0 = one per core (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--backend", defaultValue = ComputeBackends.DEFAULT, paramLabel = "NAME",
            description = "Compute backend for the matmuls and expert FFNs (default: ${DEFAULT-VALUE}; "
                    + "'moe backends' lists those installed and whether each can run here).")
    String backend;
}
