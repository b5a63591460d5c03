package io.moecluster.transport;

import io.aeron.FragmentAssembler;
import io.aeron.Subscription;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.Header;
import io.moecluster.sbe.BatchResultDecoder;
import io.moecluster.sbe.MessageHeaderDecoder;
import io.moecluster.sbe.TokenBatchDecoder;
import org.agrona.DirectBuffer;

/**
 * Polls a {@link Subscription}, reassembles fragmented messages and hands checked views to the
 * handler of their template: every length and range checked, and last the authTag with the
 * service's data-plane secret ({@link DataPlaneAuth}), so a forged message reaches no handler. Malformed messages, messages with no handler and handler failures are
 * counted and dropped: nothing thrown by a message escapes {@link #poll}, so one bad sender cannot
 * stop a service. Not thread-safe: one polling thread.
 */
public final class MessagePoller {
    /** Kind for a well-formed message whose template has no handler here. */
    public static final String NO_HANDLER = "no-handler";
    /** Kind for a handler that threw. */
    public static final String HANDLER_ERROR = "handler-error";

    /** Receives a TokenBatch; the view is valid only until the method returns. */
    @FunctionalInterface
    public interface TokenBatchHandler {
        void onTokenBatch(TokenBatchView batch);
    }

    /** Receives a BatchResult; the view is valid only until the method returns. */
    @FunctionalInterface
    public interface BatchResultHandler {
        void onBatchResult(BatchResultView result);
    }

    private final Subscription subscription;
    private final MalformedMessageCounter counter;
    private final MessageHeaderDecoder header = new MessageHeaderDecoder();
    private final TokenBatchView tokenBatch = new TokenBatchView();
    private final BatchResultView batchResult = new BatchResultView();
    private final FragmentAssembler assembler = new FragmentAssembler(this::onMessage);
    private final MessageMac mac;
    private TokenBatchHandler tokenBatchHandler;
    private BatchResultHandler batchResultHandler;

    /** Takes unsigned messages only (a cluster without a data-plane secret). */
    public MessagePoller(Subscription subscription) {
        this(subscription, DataPlaneAuth.none());
    }

    /** Takes only messages whose authTag verifies with {@code auth}'s secret (unsigned ones when it has none). */
    public MessagePoller(Subscription subscription, DataPlaneAuth auth) {
        this(subscription, new MalformedMessageCounter(subscription.channel() + " stream " + subscription.streamId()),
                auth);
    }

    public MessagePoller(Subscription subscription, MalformedMessageCounter counter) {
        this(subscription, counter, DataPlaneAuth.none());
    }

    /**
     * @param subscription what to poll; null for a poller fed only through {@link #onMessage} (tests, fuzzing)
     */
    public MessagePoller(Subscription subscription, MalformedMessageCounter counter, DataPlaneAuth auth) {
        this.subscription = subscription;
        this.counter = counter;
        this.mac = auth.newMac();
    }

    public MessagePoller onTokenBatch(TokenBatchHandler handler) {
        this.tokenBatchHandler = handler;
        return this;
    }

    public MessagePoller onBatchResult(BatchResultHandler handler) {
        this.batchResultHandler = handler;
        return this;
    }

    /** Polls up to fragmentLimit fragments; returns how many were read (for the idle strategy). */
    public int poll(int fragmentLimit) {
        return subscription.poll(assembler, fragmentLimit);
    }

    public MalformedMessageCounter counter() {
        return counter;
    }

    public Subscription subscription() {
        return subscription;
    }

    /** The whole message handler; public so tests and other transports can feed bytes directly. */
    public void onMessage(DirectBuffer buffer, int offset, int length, Header ignored) {
        try {
            dispatch(buffer, offset, length);
        } catch (MalformedMessageException e) {
            counter.record(e);
        } catch (RuntimeException e) {
            counter.record(HANDLER_ERROR, "handler failed on a message of " + length + " bytes: " + e, e);
        }
    }

    private void dispatch(DirectBuffer buffer, int offset, int length) throws MalformedMessageException {
        // The views check everything; only the template id is peeked here, after a length check.
        if (length < MessageHeaderDecoder.ENCODED_LENGTH) {
            throw new MalformedMessageException(MalformedMessageException.TRUNCATED, "message of " + length
                    + " bytes, shorter than the " + MessageHeaderDecoder.ENCODED_LENGTH + "-byte message header");
        }
        header.wrap(buffer, offset);
        if (header.schemaId() != MessageHeaderDecoder.SCHEMA_ID) {
            throw new MalformedMessageException(MalformedMessageException.BAD_SCHEMA, "schemaId " + header.schemaId()
                    + ", expected " + MessageHeaderDecoder.SCHEMA_ID);
        }
        int templateId = header.templateId();
        if (templateId == TokenBatchDecoder.TEMPLATE_ID) {
            TokenBatchView view = tokenBatch.wrap(buffer, offset, length, mac);
            if (tokenBatchHandler == null) {
                counter.record(NO_HANDLER, "TokenBatch " + view.batchId() + " with no TokenBatch handler", null);
                return;
            }
            tokenBatchHandler.onTokenBatch(view);
        } else if (templateId == BatchResultDecoder.TEMPLATE_ID) {
            BatchResultView view = batchResult.wrap(buffer, offset, length, mac);
            if (batchResultHandler == null) {
                counter.record(NO_HANDLER, "BatchResult " + view.batchId() + " with no BatchResult handler", null);
                return;
            }
            batchResultHandler.onBatchResult(view);
        } else {
            throw new MalformedMessageException(MalformedMessageException.BAD_TEMPLATE, "templateId " + templateId
                    + " is neither TokenBatch (" + TokenBatchDecoder.TEMPLATE_ID + ") nor BatchResult ("
                    + BatchResultDecoder.TEMPLATE_ID + ")");
        }
    }

    /** The assembler as a plain handler, e.g. for a controlled poll loop of one's own. */
    public FragmentHandler fragmentHandler() {
        return assembler;
    }
}
