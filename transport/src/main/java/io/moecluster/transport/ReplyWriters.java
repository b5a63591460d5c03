package io.moecluster.transport;

import io.aeron.Aeron;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.agrona.collections.Int2ObjectHashMap;

/**
 * The BatchResult writers of a serving loop, one per (channel, reply stream) its senders answer
 * on, created on first use. On one host every sender shares the IPC channel; across hosts each
 * sender's channel is its own UDP endpoint. Single-threaded: the loop that answers owns it.
 */
public final class ReplyWriters implements AutoCloseable {
    private final Aeron aeron;
    private final Duration deadline;
    private final DataPlaneAuth auth;
    // By channel (the cluster file's strings, so lookups allocate nothing), then by stream id.
    private final Map<String, Int2ObjectHashMap<BatchResultWriter>> writers = new HashMap<>();

    public ReplyWriters(Aeron aeron, Duration deadline) {
        this(aeron, deadline, DataPlaneAuth.none());
    }

    /** Answers signed with {@code auth}'s secret. */
    public ReplyWriters(Aeron aeron, Duration deadline, DataPlaneAuth auth) {
        this.aeron = aeron;
        this.deadline = deadline;
        this.auth = auth;
    }

    public BatchResultWriter to(String channel, int replyStreamId) {
        Int2ObjectHashMap<BatchResultWriter> byStream = writers.computeIfAbsent(channel, c -> new Int2ObjectHashMap<>());
        BatchResultWriter w = byStream.get(replyStreamId);
        if (w == null) {
            w = new BatchResultWriter(new BoundedPublisher(aeron.addPublication(channel, replyStreamId),
                    IdleStrategies.backoff(), deadline), auth);
            byStream.put(replyStreamId, w);
        }
        return w;
    }

    @Override
    public void close() {
        for (Int2ObjectHashMap<BatchResultWriter> byStream : writers.values()) {
            for (BatchResultWriter w : byStream.values()) {
                w.publisher().publication().close();
            }
        }
        writers.clear();
    }
}
