package io.moecluster.core.engine;

/**
 * How an engine sizes itself.
 *
 * @param threads compute threads (the caller plus workers); 0 means one per available processor
 * @param maxBatchTokens most tokens in one forward step (prefill chunks plus decode tokens)
 * @param maxSeqLen most positions one sequence may use (prompt plus completion); 0 means
 *     min(max_position_embeddings, 4096)
 */
public record EngineOptions(int threads, int maxBatchTokens, int maxSeqLen) {
    public static final int DEFAULT_MAX_BATCH_TOKENS = 256;
    public static final int DEFAULT_MAX_SEQ_LEN_CAP = 4096;

    public EngineOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be >= 0, got " + threads);
        }
        if (maxBatchTokens < 1) {
            throw new IllegalArgumentException("max-batch-tokens must be >= 1, got " + maxBatchTokens);
        }
        if (maxSeqLen < 0) {
            throw new IllegalArgumentException("max-seq-len must be >= 0, got " + maxSeqLen);
        }
    }

    public static EngineOptions defaults() {
        return new EngineOptions(0, DEFAULT_MAX_BATCH_TOKENS, 0);
    }

    public EngineOptions withThreads(int t) {
        return new EngineOptions(t, maxBatchTokens, maxSeqLen);
    }

    public EngineOptions withMaxBatchTokens(int n) {
        return new EngineOptions(threads, n, maxSeqLen);
    }

    public EngineOptions withMaxSeqLen(int n) {
        return new EngineOptions(threads, maxBatchTokens, n);
    }

    int resolvedThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }

    int resolvedMaxSeqLen(int maxPositionEmbeddings) {
        return maxSeqLen > 0 ? maxSeqLen : Math.min(maxPositionEmbeddings, DEFAULT_MAX_SEQ_LEN_CAP);
    }
}
