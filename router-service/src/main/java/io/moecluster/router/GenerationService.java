package io.moecluster.router;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.tokenizer.TextTokenizer;

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
        if (!admission.tryAcquire()) {
            listener.onFailed(new GenerationError(GenerationError.Kind.RESOURCE_EXHAUSTED,
                    "cluster at capacity (" + admission.maxActive() + " active requests)"));
            return () -> { };
        }
        GenerationSession session = new GenerationSession(request, tokenizer, listener, admission::release, metrics);
        try {
            attention.run(request.run(), session);
        } catch (RuntimeException e) {
            session.onError(e);
        }
        return session;
    }
}
