package io.moecluster.transport;

import io.aeron.Aeron;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * The BatchResult writers of a serving loop, one per reply stream its senders name, created on
 * first use on the service's channel. Single-threaded: the loop that answers owns it.
 */
public final class ReplyWriters implements AutoCloseable {
    private final Aeron aeron;
    private final String channel;
    private final Duration deadline;
    private final Map<Integer, BatchResultWriter> writers = new HashMap<>();

    public ReplyWriters(Aeron aeron, String channel, Duration deadline) {
        this.aeron = aeron;
        this.channel = channel;
        this.deadline = deadline;
    }

    public BatchResultWriter to(int replyStreamId) {
        return writers.computeIfAbsent(replyStreamId, s -> new BatchResultWriter(
                new BoundedPublisher(aeron.addPublication(channel, s), IdleStrategies.backoff(), deadline)));
    }

    @Override
    public void close() {
        for (BatchResultWriter w : writers.values()) {
            w.publisher().publication().close();
        }
        writers.clear();
    }
}
