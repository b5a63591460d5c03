package io.moecluster.cli;

import io.moecluster.cli.cluster.LocalSupervisor;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** The supervisor of a local cluster; {@code moe up} starts it (see {@link LocalSupervisor}). */
@Command(name = "supervise", hidden = true, mixinStandardHelpOptions = true,
        description = "Restarts the services of the local cluster 'moe up' started when they exit, with backoff "
                + "(moe up runs this; moe down stops it).")
final class SuperviseCommand implements Callable<Integer> {
    @Mixin
    StateDirFlag stateDir;

    @Override
    public Integer call() throws Exception {
        LocalSupervisor supervisor = new LocalSupervisor(stateDir.state());
        CountDownLatch done = new CountDownLatch(1);
        // SIGTERM (moe down): stop restarting, and let the current poll finish first.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            supervisor.stop();
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "supervisor-stop"));
        try {
            supervisor.run();
        } finally {
            done.countDown();
        }
        return 0;
    }
}
