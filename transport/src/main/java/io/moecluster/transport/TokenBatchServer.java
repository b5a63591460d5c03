package io.moecluster.transport;

import io.aeron.Aeron;
import io.aeron.Subscription;
import io.moecluster.sbe.ElementType;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import org.agrona.concurrent.Agent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The serving side of the data plane, as an Agrona {@link Agent}: reads TokenBatches from one
 * subscription, hands each to a {@link Handler} that computes its rows, and answers on the
 * sender's reply stream with the rows or an ERROR naming why (so the sender fails the request at
 * once instead of timing out). An expert service serves expert batches this way, the
 * router-service whole-layer MoE requests.
 *
 * <p>Run it on its own thread with {@link AgentRunners#start}, or inside an Agrona
 * {@code CompositeAgent} where services share a thread. Handlers run on the agent's thread;
 * {@link #onClose()} (called there by the runner) releases the subscription and the reply
 * publications.
 */
public final class TokenBatchServer implements Agent {
    private static final Logger LOG = LoggerFactory.getLogger(TokenBatchServer.class);

    /** Computes the answer to one batch. */
    @FunctionalInterface
    public interface Handler {
        /**
         * Serves {@code batch} (valid until this returns) and says what to answer through
         * {@code reply}: {@link Reply#rows} or {@link Reply#error}. Exactly one of them; a handler
         * that throws is answered with the exception's text.
         */
        void serve(TokenBatchView batch, Reply reply);
    }

    /** The answer a {@link Handler} gives; one instance, reset per batch. */
    public static final class Reply {
        private MemorySegment rows;
        private long firstFloat;
        private int tokens;
        private int hidden;
        private ElementType type;
        private String error;

        /** Answer with tokens x hidden f32 rows of {@code f32Rows} from float index {@code firstFloat}, sent as {@code type}. */
        public void rows(MemorySegment f32Rows, long firstFloat, int tokens, int hidden, ElementType type) {
            this.rows = f32Rows;
            this.firstFloat = firstFloat;
            this.tokens = tokens;
            this.hidden = hidden;
            this.type = type;
        }

        /** Answer with an ERROR carrying {@code message}. */
        public void error(String message) {
            this.error = Objects.requireNonNullElse(message, "error");
        }

        /** Whether {@link #error} was called for this batch. */
        public boolean isError() {
            return error != null;
        }

        void reset() {
            rows = null;
            type = null;
            error = null;
        }
    }

    private final String roleName;
    private final Subscription subscription;
    private final MessagePoller poller;
    private final ReplyWriters replies;
    private final IntFunction<String> replyChannels;
    private final int senderId;
    private final int fragmentLimit;
    private final Handler handler;
    private final Reply reply = new Reply();
    private final AtomicLong answered = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong unanswered = new AtomicLong();

    /**
     * @param roleName the agent's (and its thread's) name
     * @param replyChannels the channel to answer each sender id on; throws IllegalArgumentException
     *     for a sender it does not know (the batch is then dropped and counted)
     * @param senderId this service's id in the answers
     * @param publicationDeadline how long an answer may wait for back-pressure or a connection
     */
    public TokenBatchServer(String roleName, Aeron aeron, String channel, int streamId, IntFunction<String> replyChannels,
                            int senderId, int fragmentLimit, Duration publicationDeadline, Handler handler) {
        this(roleName, aeron, channel, streamId, replyChannels, senderId, fragmentLimit, publicationDeadline,
                DataPlaneAuth.none(), handler);
    }

    /**
     * As above, with the service's data-plane authentication: batches whose authTag does not
     * verify are dropped (counted) before the handler sees them, and answers are signed.
     */
    public TokenBatchServer(String roleName, Aeron aeron, String channel, int streamId, IntFunction<String> replyChannels,
                            int senderId, int fragmentLimit, Duration publicationDeadline, DataPlaneAuth auth,
                            Handler handler) {
        this.roleName = roleName;
        this.subscription = aeron.addSubscription(channel, streamId);
        this.poller = new MessagePoller(subscription, auth).onTokenBatch(this::onBatch);
        this.replies = new ReplyWriters(aeron, publicationDeadline, auth);
        this.replyChannels = replyChannels;
        this.senderId = senderId;
        this.fragmentLimit = fragmentLimit;
        this.handler = handler;
    }

    @Override
    public int doWork() {
        return poller.poll(fragmentLimit);
    }

    @Override
    public String roleName() {
        return roleName;
    }

    /** Batches answered with rows. */
    public long answered() {
        return answered.get();
    }

    /** Batches answered with an ERROR. */
    public long errorsAnswered() {
        return errors.get();
    }

    /** Answers that could not be sent (the sender went away) and batches from unknown senders. */
    public long unanswered() {
        return unanswered.get();
    }

    /** Malformed messages counted and dropped (unauthenticated ones included). */
    public long malformedDropped() {
        return poller.counter().total();
    }

    /** Messages dropped because their authTag did not verify. */
    public long unauthenticatedDropped() {
        return poller.counter().count(MalformedMessageException.UNAUTHENTICATED);
    }

    private void onBatch(TokenBatchView b) {
        BatchResultWriter writer;
        try {
            writer = replies.to(replyChannels.apply(b.senderId()), b.replyStreamId());
        } catch (IllegalArgumentException unknownSender) {
            unanswered.incrementAndGet();
            LOG.warn("{}: batch {} from unknown sender {} dropped: {}", roleName, b.batchId(), b.senderId(),
                    unknownSender.getMessage());
            return;
        }
        reply.reset();
        try {
            handler.serve(b, reply);
            if (!reply.isError() && reply.rows == null) {
                reply.error("the service produced no answer for batch " + b.batchId());
            }
        } catch (RuntimeException e) {
            LOG.warn("{}: batch {} (layer {}, expert {}) failed: {}", roleName, b.batchId(), b.layer(), b.expertId(),
                    e.toString());
            reply.error(e.getMessage() == null ? e.toString() : e.getMessage());
        }
        try {
            if (reply.isError()) {
                errors.incrementAndGet();
                writer.sendError(b.batchId(), b.layer(), b.expertId(), senderId, reply.error);
            } else {
                writer.sendRows(b.batchId(), b.layer(), b.expertId(), senderId, reply.rows, reply.firstFloat,
                        reply.tokens, reply.hidden, reply.type);
                answered.incrementAndGet();
            }
        } catch (TransportException e) {
            // The sender gave up or went away; it times the batch out and fails or moves the request.
            unanswered.incrementAndGet();
            LOG.warn("{}: could not answer batch {} on stream {}: {}", roleName, b.batchId(), b.replyStreamId(),
                    e.getMessage());
        } finally {
            reply.reset();
        }
    }

    @Override
    public void onClose() {
        replies.close();
        subscription.close();
    }
}
