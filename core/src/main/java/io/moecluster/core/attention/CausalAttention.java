package io.moecluster.core.attention;

import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Causal grouped-query attention of every (token, head) pair of a step against its sequence's
 * cache (plane 0 keys, plane 1 values, as {@link GroupedQueryAttention} lays them out), split
 * across the pool by pair; each worker keeps its own score row.
 */
public final class CausalAttention implements RangeTask {
    private final int heads;
    private final int headDim;
    private final int group;
    private final int window;
    private final int maxPositions;
    private final float scale;
    private final MemorySegment scores;

    private StepBatch batch;
    private int layer;
    private MemorySegment q;
    private MemorySegment out;

    public CausalAttention(ModelConfig config, int threads, int maxPositions, Arena arena) {
        this.heads = config.numHeads();
        this.headDim = config.headDim();
        this.group = config.numHeads() / config.numKvHeads();
        this.window = config.slidingWindow();
        this.maxPositions = maxPositions;
        this.scale = (float) (1.0 / Math.sqrt(config.headDim()));
        this.scores = arena.allocate((long) threads * maxPositions * 4, 64);
    }

    public void run(WorkerPool pool, StepBatch batch, int layer, MemorySegment q, MemorySegment out) {
        this.batch = batch;
        this.layer = layer;
        this.q = q;
        this.out = out;
        pool.parallelFor(batch.size() * heads, 1, this);
        this.batch = null;
    }

    @Override
    public void run(int worker, int start, int end) {
        long scoreBase = (long) worker * maxPositions;
        for (int pair = start; pair < end; pair++) {
            int t = pair / heads;
            int h = pair % heads;
            int pos = batch.position(t);
            KvCache cache = batch.cache(t);
            int first = window > 0 ? Math.max(0, pos - window + 1) : 0;
            int count = pos - first + 1;
            long qIndex = (long) t * heads * headDim + (long) h * headDim;
            int kvOffset = (h / group) * headDim;
            MemorySegment keys = cache.plane(GroupedQueryAttention.KEYS);
            for (int p = 0; p < count; p++) {
                long kIndex = cache.index(GroupedQueryAttention.KEYS, layer, first + p) + kvOffset;
                Kernels.set(scores, scoreBase + p, Kernels.dot(q, qIndex, keys, kIndex, headDim) * scale);
            }
            Kernels.softmax(scores, scoreBase, count);
            MemorySegment values = cache.plane(GroupedQueryAttention.VALUES);
            long outIndex = qIndex;
            Kernels.scaleInto(Kernels.get(scores, scoreBase), values,
                    cache.index(GroupedQueryAttention.VALUES, layer, first) + kvOffset, out, outIndex, headDim);
            for (int p = 1; p < count; p++) {
                Kernels.axpy(Kernels.get(scores, scoreBase + p), values,
                        cache.index(GroupedQueryAttention.VALUES, layer, first + p) + kvOffset, out, outIndex, headDim);
            }
        }
    }
}
