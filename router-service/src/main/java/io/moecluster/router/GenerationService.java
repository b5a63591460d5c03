package io.moecluster.router;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.tokenizer.TextTokenizer;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The router's generation logic, whatever the client's API (the gRPC Inference service, the
 * OpenAI-compatible HTTP API): admission within {@link AdmissionControl}, the attention call on
 * the least-loaded replica, token-to-text decoding, stop sequences, request metrics, and
 * cancellation when the client leaves. An API turns its request into a {@link PreparedRequest}
 * (through {@link #validator()}) and its listener's callbacks into its own responses.
 *
 * <p>Tracing: the attention call is a child of the OpenTelemetry context current when
 * {@link #start} is called (an API makes its server span current around it).
 */
public final class GenerationService {
    private final ModelConfig config;
    private final TextTokenizer tokenizer;
    private final AttentionPool attention;
    private final AdmissionControl admission;
    private final RequestValidator validator;
    private final RequestMetrics metrics;
    /** Admitted requests still running, so that a stop can end them with UNAVAILABLE (not a cut connection). */
    private final Set<GenerationSession> running = ConcurrentHashMap.newKeySet();
    private volatile String stopped;

    public GenerationService(ModelConfig config, TextTokenizer tokenizer, AttentionPool attention,
                             AdmissionControl admission, RequestValidator validator, RequestMetrics metrics) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.attention = attention;
        this.admission = admission;
        this.validator = validator;
        this.metrics = metrics;
    }

    public ModelConfig config() {
        return config;
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public RequestValidator validator() {
        return validator;
    }

    public AdmissionControl admission() {
        return admission;
    }

    /**
     * Admits and starts {@code request}. A full cluster is answered at once, on this thread, with
     * {@link GenerationError.Kind#RESOURCE_EXHAUSTED}; otherwise the listener hears the completions
     * as they come.
     *
     * @return the running call, to {@link GenerationCall#cancel()} when the client leaves
     */
    public GenerationCall start(PreparedRequest request, CompletionListener listener) {
        String stop = stopped;
        if (stop != null) {
            listener.onFailed(new GenerationError(GenerationError.Kind.UNAVAILABLE, stop));
            return () -> { };
        }
        if (!admission.tryAcquire()) {
            listener.onFailed(new GenerationError(GenerationError.Kind.RESOURCE_EXHAUSTED,
                    "cluster at capacity (" + admission.maxActive() + " active requests)"));
            return () -> { };
        }
        GenerationSession[] self = new GenerationSession[1];
        GenerationSession session = new GenerationSession(request, tokenizer, listener, () -> {
            admission.release();
            running.remove(self[0]);
        }, metrics);
        self[0] = session;
        running.add(session);
        try {
            attention.run(request.run(), session);
        } catch (RuntimeException e) {
            session.onError(e);
        }
        if (stopped != null) {
            session.abort(stopped);
        }
        return session;
    }

    /**
     * From now on requests fail with UNAVAILABLE saying {@code why}, and those running are ended
     * that way now (their attention runs cancelled): what clients see when this router stops or
     * can no longer compute, rather than a cancelled call.
     */
    public void stop(String why) {
        stopped = why;
        for (GenerationSession s : List.copyOf(running)) {
            s.abort(why);
        }
    }

    /** Requests admitted and not yet ended. */
    public int runningRequests() {
        return running.size();
    }
}
