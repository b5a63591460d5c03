package io.moecluster.core.engine;

import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.attention.FeedForwardFactory;
import io.moecluster.core.attention.KvCache;
import io.moecluster.core.attention.StepBatch;
import io.moecluster.core.attention.Transformer;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackends;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.moe.LocalFeedForward;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/**
 * The whole model in one process: a {@link Transformer} over a {@link LocalFeedForward}, with the
 * checkpoint, weights and threads it needs. Not thread-safe: one caller drives it (the
 * {@link BatchGenerator} loop, a CLI command, a test).
 */
public final class Engine implements AutoCloseable {
    private final Path modelDir;
    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final WeightLoader loader;
    private final WorkerPool pool;
    private final ComputeBackend backend;
    private final FeedForward feedForward;
    private final Transformer transformer;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment logits;

    private Engine(Path modelDir, ModelConfig config, Checkpoint checkpoint, WeightLoader loader, WorkerPool pool,
                   ComputeBackend backend, FeedForward feedForward, Transformer transformer) {
        this.modelDir = modelDir;
        this.config = config;
        this.checkpoint = checkpoint;
        this.loader = loader;
        this.pool = pool;
        this.backend = backend;
        this.feedForward = feedForward;
        this.transformer = transformer;
        this.logits = arena.allocate((long) transformer.maxBatchTokens() * config.vocabSize() * 4, 64);
    }

    /** Loads a Hugging Face model directory; fails with a {@link io.moecluster.core.model.ModelFormatException} naming what is wrong. */
    public static Engine open(Path modelDir, EngineOptions options) {
        return open(modelDir, options, LocalFeedForward::new);
    }

    /** As {@link #open(Path, EngineOptions)}, with the feed-forward side built by {@code feedForwardFactory}. */
    public static Engine open(Path modelDir, EngineOptions options, FeedForwardFactory feedForwardFactory) {
        ModelConfig config = ModelConfig.load(modelDir);
        Checkpoint checkpoint = Checkpoint.open(modelDir);
        WeightLoader loader = null;
        WorkerPool pool = null;
        ComputeBackend backend = null;
        FeedForward ffn = null;
        try {
            loader = new WeightLoader(checkpoint, config);
            pool = new WorkerPool(options.resolvedThreads(), "moe-engine");
            backend = ComputeBackends.open(options.backend(), pool);
            ffn = feedForwardFactory.create(config, loader, backend, options.maxBatchTokens());
            Transformer transformer = new Transformer(config, loader, ffn, backend, pool, options.maxBatchTokens(),
                    options.resolvedMaxSeqLen(config.maxPositionEmbeddings()));
            return new Engine(modelDir, config, checkpoint, loader, pool, backend, ffn, transformer);
        } catch (RuntimeException e) {
            closeQuietly(ffn, e);
            if (backend != null) {
                backend.close();
            }
            if (pool != null) {
                pool.close();
            }
            if (loader != null) {
                loader.close();
            }
            checkpoint.close();
            throw e;
        }
    }

    public Path modelDir() {
        return modelDir;
    }

    public ModelConfig config() {
        return config;
    }

    public Transformer transformer() {
        return transformer;
    }

    public int threads() {
        return pool.threads();
    }

    /** Where the engine's matmuls and FFNs run. */
    public ComputeBackend backend() {
        return backend;
    }

    /** The engine's compute threads, for work that should run beside it on the same cores (benchmarks). */
    public WorkerPool pool() {
        return pool;
    }

    /**
     * Weight bytes one decoded token reads in this process: attention and LM head, plus the router,
     * k experts and shared/dense FFNs when they run here.
     */
    public long activeWeightBytesPerToken() {
        return transformer.activeBytesPerToken()
                + (feedForward instanceof LocalFeedForward local ? local.activeBytesPerToken() : 0);
    }

    /**
     * The formats of the checkpoint's tensors, by bytes, e.g. "F8_E4M3 (16x16 blocks) 71%, BF16 29%"; what the
     * weights cost in memory and bandwidth comes from these.
     */
    public String weightFormats() {
        Map<DType, Long> bytes = new EnumMap<>(DType.class);
        long total = 0;
        for (String name : checkpoint.tensorNames()) {
            var info = checkpoint.info(name);
            bytes.merge(info.dtype(), info.byteSize(), Long::sum);
            total += info.byteSize();
        }
        StringBuilder s = new StringBuilder();
        for (var e : bytes.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue(), a.getValue())).toList()) {
            if (!s.isEmpty()) {
                s.append(", ");
            }
            s.append(e.getKey().safetensorsName());
            if (e.getKey().isBlockQuantized() && config.quantization() != null) {
                s.append(" (").append(config.quantization().blockRows()).append('x')
                        .append(config.quantization().blockCols()).append(" blocks)");
            }
            s.append(String.format(Locale.ROOT, " %.0f%%", 100.0 * e.getValue() / total));
        }
        return s.toString();
    }

    public FeedForward feedForward() {
        return feedForward;
    }

    private static void closeQuietly(Object resource, Exception primary) {
        if (resource instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception suppressed) {
                primary.addSuppressed(suppressed);
            }
        }
    }

    /** Runs one step and returns the logits buffer ({@code [batch.logitRows(), vocab]}), valid until the next step. */
    public MemorySegment step(StepBatch batch) {
        transformer.forward(batch, logits);
        return logits;
    }

    /**
     * Logits after every token of {@code tokens}, computed by prefilling the whole sequence
     * (in chunks of at most max-batch-tokens). Row t is the distribution of token t+1.
     */
    public float[][] prefillLogits(int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("no tokens");
        }
        int vocab = config.vocabSize();
        float[][] out = new float[tokens.length][vocab];
        StepBatch batch = new StepBatch(transformer.maxBatchTokens());
        try (KvCache cache = transformer.newKvCache(tokens.length)) {
            for (int start = 0; start < tokens.length; start += batch.capacity()) {
                batch.clear();
                int end = Math.min(tokens.length, start + batch.capacity());
                for (int t = start; t < end; t++) {
                    batch.add(tokens[t], t, cache, true);
                }
                MemorySegment l = step(batch);
                for (int t = start; t < end; t++) {
                    MemorySegment.copy(l, Kernels.F32, (long) (t - start) * vocab * 4, out[t], 0, vocab);
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        transformer.close();
        if (feedForward instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing the feed-forward side failed", e);
            }
        }
        backend.close();
        pool.close();
        loader.close();
        checkpoint.close();
        arena.close();
    }
}
