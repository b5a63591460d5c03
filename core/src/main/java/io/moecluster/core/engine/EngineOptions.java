package io.moecluster.core.engine;

import io.moecluster.core.backend.ComputeBackends;

/**
 * How an engine sizes itself and where it computes. Errors name the command-line flags, which map
 * one to one onto these fields.
 *
 * @param threads compute threads (the caller plus workers); 0 means one per available processor
 * @param maxBatchTokens most tokens in one forward step (prefill chunks plus decode tokens)
 * @param maxSeqLen most positions one sequence may use (prompt plus completion); 0 means
 *     min(max_position_embeddings, 4096)
 * @param backend the compute device, as {@code --device} takes it: a backend's name
 *     ({@link ComputeBackends}), with a device index where it has several ({@code cuda:1})
 */
public record EngineOptions(int threads, int maxBatchTokens, int maxSeqLen, String backend) {
    public static final int DEFAULT_MAX_BATCH_TOKENS = 256;
    public static final int DEFAULT_MAX_SEQ_LEN_CAP = 4096;

    public EngineOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("--threads must be >= 0 (0 = one per core), got " + threads);
        }
        if (maxBatchTokens < 1) {
            throw new IllegalArgumentException("--max-batch-tokens must be >= 1, got " + maxBatchTokens);
        }
        if (maxSeqLen < 0) {
            throw new IllegalArgumentException("--max-seq-len must be >= 0 (0 = the model's, at most "
                    + DEFAULT_MAX_SEQ_LEN_CAP + "), got " + maxSeqLen);
        }
        if (backend == null || backend.isBlank()) {
            throw new IllegalArgumentException("--device must name a compute backend, e.g. " + ComputeBackends.DEFAULT);
        }
    }

    /** On the default backend. */
    public EngineOptions(int threads, int maxBatchTokens, int maxSeqLen) {
        this(threads, maxBatchTokens, maxSeqLen, ComputeBackends.DEFAULT);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(0, DEFAULT_MAX_BATCH_TOKENS, 0);
    }

    public EngineOptions withThreads(int t) {
        return new EngineOptions(t, maxBatchTokens, maxSeqLen, backend);
    }

    public EngineOptions withMaxBatchTokens(int n) {
        return new EngineOptions(threads, n, maxSeqLen, backend);
    }

    public EngineOptions withMaxSeqLen(int n) {
        return new EngineOptions(threads, maxBatchTokens, n, backend);
    }

    public EngineOptions withBackend(String name) {
        return new EngineOptions(threads, maxBatchTokens, maxSeqLen, name);
    }

    /** The thread count to start: {@link #threads}, or one per available processor. */
    public int resolvedThreads() {
        return resolveThreads(threads);
    }

    /** {@code threads}, or one per available processor when it is 0. */
    public static int resolveThreads(int threads) {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    int resolvedMaxSeqLen(int maxPositionEmbeddings) {
        return maxSeqLen > 0 ? maxSeqLen : Math.min(maxPositionEmbeddings, DEFAULT_MAX_SEQ_LEN_CAP);
    }
}
