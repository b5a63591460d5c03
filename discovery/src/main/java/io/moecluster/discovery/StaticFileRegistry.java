package io.moecluster.discovery;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The registry of a local cluster: the cluster file itself. Every expert service it lists is taken
 * as live (a dead one is found by the dispatcher: not connected, or no answer), and the file is
 * re-read when it changes, which is how {@code moe scale} and {@code moe drain} add and remove
 * replicas without restarting anything. Registration is a no-op: {@code moe up} writes the file.
 *
 * <p>Writers replace the file atomically (write a sibling, then rename), so a reader never sees half
 * a file; a file that does not parse is logged and the last good set kept.
 */
public final class StaticFileRegistry implements ServiceRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(StaticFileRegistry.class);

    private final Path file;
    private final long pollMillis;

    /** @param pollMillis how often to look at the file's modification time */
    public StaticFileRegistry(Path file, long pollMillis) {
        this.file = Objects.requireNonNull(file, "file");
        if (pollMillis < 1) {
            throw new IllegalArgumentException("pollMillis must be positive, got " + pollMillis);
        }
        this.pollMillis = pollMillis;
    }

    public StaticFileRegistry(Path file) {
        this(file, 200);
    }

    @Override
    public Registration register(ServiceInstance instance) {
        return () -> { };
    }

    @Override
    public Watch watchExperts(Consumer<List<ClusterSpec.Expert>> listener) {
        ClusterSpec first = ClusterSpec.read(file);
        listener.accept(first.experts());
        ScheduledExecutorService poller = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "cluster-file-watch");
            t.setDaemon(true);
            return t;
        });
        FileTime[] seen = {modified()};
        List<?>[] last = {first.experts()};
        poller.scheduleWithFixedDelay(() -> {
            FileTime now = modified();
            if (now == null || now.equals(seen[0])) {
                return;
            }
            seen[0] = now;
            try {
                List<ClusterSpec.Expert> experts = ClusterSpec.read(file).experts();
                if (!experts.equals(last[0])) {
                    last[0] = experts;
                    LOG.info("{} changed: {} expert services", file, experts.size());
                    listener.accept(experts);
                }
            } catch (RuntimeException e) {
                LOG.warn("{} changed but cannot be used, keeping the previous expert services: {}", file, e.getMessage());
            }
        }, pollMillis, pollMillis, TimeUnit.MILLISECONDS);
        return poller::shutdownNow;
    }

    private FileTime modified() {
        try {
            return Files.getLastModifiedTime(file);
        } catch (IOException e) {
            return null;
        }
    }
}
