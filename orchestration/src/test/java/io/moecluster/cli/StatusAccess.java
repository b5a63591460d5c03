package io.moecluster.cli;

import io.moecluster.cli.cluster.ClusterState;
import java.io.IOException;
import java.io.PrintWriter;

/** Lets tests in other packages print {@code moe status}'s process table. */
public final class StatusAccess {
    private StatusAccess() {
    }

    public static void printProcesses(ClusterState state, PrintWriter out) throws IOException {
        StatusCommand.printProcesses(state, out);
    }
}
