package io.moecluster.core.attention;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.MlaConfig;
import io.moecluster.core.model.MlaWeights;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.parallel.RangeTask;
import io.moecluster.core.parallel.WorkerPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

/**
 * Multi-head latent attention as DeepSeek-V3 has it, with a compressed cache.
 *
 * <p>Per token: q = {@code q_b(norm(q_a(x)))} (or {@code q_proj(x)} without q LoRA), per head
 * {@code [nope | rope]}; {@code kv_a_proj_with_mqa(x)} gives the latent (then {@code kv_a_layernorm},
 * eps 1e-6 as the model's own code has it) and one rope key shared by every head. RoPE turns only
 * the rope parts ({@link RotaryEmbedding#of}: interleaved pairs by default, YaRN where declared).
 * The cache keeps just those: plane {@link #LATENT} ({@code kv_lora_rank} floats) and plane
 * {@link #ROPE_KEY} ({@code qk_rope_head_dim}) per token and layer, 576 floats for the real model
 * where per-head keys and values would take 128 x 320. {@code kv_b_proj} maps a latent to
 * {@code [k_nope | v]} per head. Scores are {@code (q_nope·k_nope + q_rope·k_rope) * scale} with
 * {@code scale = (qk_nope + qk_rope)^-1/2}, times {@code mscale(factor, mscale_all_dim)^2} under YaRN.
 *
 * <p>Two forms, chosen per token by {@link StepBatch#isDecode}, never by chunking or batch-mates:
 * <ul>
 *   <li><b>Expanded</b> (prompt tokens): the sequence's cached latents of this layer are expanded
 *       once per step by {@code kv_b_proj} into per-head keys and values (one batched matmul over
 *       the positions), then each (token, head) attends as grouped-query attention would.
 *   <li><b>Absorbed</b> (generated tokens): {@code kv_b_proj} is folded into the query and the
 *       output instead: {@code q_abs = W_uk^T q_nope} ({@link WeightMatrix#combineRows}), scores
 *       against the cached latents directly, the weighted latent sum, then {@code W_uv} once per
 *       head; nothing per position is expanded, which is what makes decoding cheap.
 * </ul>
 * The two agree to float rounding (tested: logits of token-by-token decode against prefill). A
 * sequence longer than the expansion buffer ({@value #MAX_EXPANSION_BYTES} bytes) is prefilled in
 * the absorbed form too.
 */
public final class MultiHeadLatentAttention implements AttentionKind, RangeTask {
    /** The cache plane of the normalised latents. */
    public static final int LATENT = 0;
    /** The cache plane of the rotated rope keys. */
    public static final int ROPE_KEY = 1;
    /** The most bytes of per-head keys and values one layer's expansion may take. */
    static final long MAX_EXPANSION_BYTES = 256L << 20;

    /** How tokens are computed: each by its kind (the default), or all in one form (tests, comparisons). */
    public enum Form {
        PER_TOKEN, ABSORBED, EXPANDED
    }

    private final ModelConfig config;
    private final MlaConfig mla;
    private final WorkerPool pool;
    private final MlaWeights[] layers;
    private final Arena arena = Arena.ofShared();
    private final RotaryEmbedding rope;
    private final DenseMatMul matmul;
    private final int heads;
    private final int nope;
    private final int ropeDim;
    private final int vDim;
    private final int lora;
    private final int qkDim;
    private final int kvbRows;
    private final float scale;
    private final int maxPositions;
    private final int expansionRows;

    private final MemorySegment qa;
    private final MemorySegment q;
    private final MemorySegment kvA;
    private final MemorySegment attnOut;
    private final MemorySegment expanded;
    private final MemorySegment qAbs;
    private final MemorySegment acc;
    private final MemorySegment headOut;
    private final MemorySegment scores;
    private final MemorySegment[] rowScratch;
    private final int[] tokens;
    private final boolean[] done;

    private Form form = Form.PER_TOKEN;
    // The current pass, in fields so that the pool runs it without allocating.
    private boolean absorbedPass;
    private StepBatch batch;
    private int layer;
    private int tokenCount;
    private WeightMatrix kvB;

    MultiHeadLatentAttention(ModelConfig config, WeightLoader loader, ComputeBackend backend, WorkerPool pool,
                             int maxBatchTokens, int maxPositions) {
        this.config = config;
        this.mla = config.mla();
        this.pool = pool;
        this.layers = new MlaWeights[config.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = loader.mla(l);
        }
        this.rope = RotaryEmbedding.of(config, maxPositions, arena);
        this.matmul = backend.newMatMul();
        this.heads = config.numHeads();
        this.nope = mla.qkNopeHeadDim();
        this.ropeDim = mla.qkRopeHeadDim();
        this.vDim = mla.vHeadDim();
        this.lora = mla.kvLoraRank();
        this.qkDim = mla.qkHeadDim();
        this.kvbRows = heads * (nope + vDim);
        double s = 1.0 / Math.sqrt(qkDim);
        if (config.ropeScaling() != null) {
            s *= config.ropeScaling().softmaxScaleFactor();
        }
        this.scale = (float) s;
        this.maxPositions = maxPositions;
        this.expansionRows = (int) Math.min(maxPositions, MAX_EXPANSION_BYTES / ((long) kvbRows * 4));
        int threads = pool.threads();
        this.qa = mla.qLoraRank() > 0 ? rows(maxBatchTokens, mla.qLoraRank()) : null;
        this.q = rows(maxBatchTokens, heads * qkDim);
        this.kvA = rows(maxBatchTokens, lora + ropeDim);
        this.attnOut = rows(maxBatchTokens, heads * vDim);
        this.expanded = rows(expansionRows, kvbRows);
        this.qAbs = rows(threads, lora);
        this.acc = rows(threads, lora);
        this.headOut = rows(threads, kvbRows);
        this.scores = rows(threads, maxPositions);
        this.rowScratch = new MemorySegment[threads];
        for (int w = 0; w < threads; w++) {
            rowScratch[w] = rows(1, lora);
        }
        this.tokens = new int[maxBatchTokens];
        this.done = new boolean[maxBatchTokens];
    }

    private MemorySegment rows(int count, int width) {
        return arena.allocate(Math.max(1L, (long) count * width * 4), 64);
    }

    /** Computes every token in {@code form} from now on ({@link Form#PER_TOKEN} restores the default). */
    public void form(Form form) {
        this.form = form;
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "multi-head latent attention (%d heads, latent %d + rope key %d cached,"
                + " q LoRA %s, nope %d + rope %d, v %d)", heads, lora, ropeDim,
                mla.qLoraRank() > 0 ? Integer.toString(mla.qLoraRank()) : "none", nope, ropeDim, vDim);
    }

    @Override
    public int cacheFloatsPerToken() {
        return lora + ropeDim;
    }

    @Override
    public int uncompressedCacheFloatsPerToken() {
        return heads * (qkDim + vDim);
    }

    @Override
    public KvCache newCache(int layers, int capacity) {
        return new KvCache(layers, capacity, lora, ropeDim);
    }

    @Override
    public MlaWeights weights(int layer) {
        return layers[layer];
    }

    private boolean absorbed(StepBatch b, int t) {
        return switch (form) {
            case ABSORBED -> true;
            case EXPANDED -> b.position(t) >= expansionRows;
            case PER_TOKEN -> b.isDecode(t) || b.position(t) >= expansionRows;
        };
    }

    @Override
    public void forward(int layer, StepBatch batch, MemorySegment xn, MemorySegment out) {
        int n = batch.size();
        MlaWeights w = layers[layer];
        int qStride = heads * qkDim;
        if (w.qA() != null) {
            int r = mla.qLoraRank();
            matmul.apply(w.qA(), xn, qa, n);
            for (int t = 0; t < n; t++) {
                Kernels.rmsNorm(qa, (long) t * r, w.qANorm(), qa, (long) t * r, r, WeightLoader.MLA_NORM_EPS);
            }
            matmul.apply(w.qB(), qa, q, n);
        } else {
            matmul.apply(w.qB(), xn, q, n);
        }
        matmul.apply(w.kvA(), xn, kvA, n);
        int kvStride = lora + ropeDim;
        for (int t = 0; t < n; t++) {
            int pos = batch.position(t);
            KvCache cache = batch.cache(t);
            Kernels.rmsNorm(kvA, (long) t * kvStride, w.kvANorm(), cache.plane(LATENT), cache.index(LATENT, layer, pos),
                    lora, WeightLoader.MLA_NORM_EPS);
            rope.apply(kvA, (long) t * kvStride + lora, 1, kvStride, pos);
            MemorySegment.copy(kvA, ((long) t * kvStride + lora) * 4, cache.plane(ROPE_KEY),
                    cache.index(ROPE_KEY, layer, pos) * 4, (long) ropeDim * 4);
            rope.apply(q, (long) t * qStride + nope, heads, qkDim, pos);
        }

        this.batch = batch;
        this.layer = layer;
        this.kvB = w.kvB();
        // Generated tokens: the absorbed form, every (token, head) pair at once.
        tokenCount = 0;
        for (int t = 0; t < n; t++) {
            done[t] = absorbed(batch, t);
            if (done[t]) {
                tokens[tokenCount++] = t;
            }
        }
        if (tokenCount > 0) {
            absorbedPass = true;
            pool.parallelFor(tokenCount * heads, 1, this);
        }
        // Prompt tokens: per sequence, its latents expanded once, then its pairs.
        absorbedPass = false;
        for (int t = 0; t < n; t++) {
            if (done[t]) {
                continue;
            }
            KvCache cache = batch.cache(t);
            int last = 0;
            tokenCount = 0;
            for (int u = t; u < n; u++) {
                if (!done[u] && batch.cache(u) == cache) {
                    done[u] = true;
                    tokens[tokenCount++] = u;
                    last = Math.max(last, batch.position(u));
                }
            }
            matmul.apply(kvB, cache.plane(LATENT), cache.row(layer, 0), expanded, 0, last + 1);
            pool.parallelFor(tokenCount * heads, 1, this);
        }
        this.batch = null;
        this.kvB = null;
        matmul.apply(w.o(), attnOut, out, n);
    }

    @Override
    public void run(int worker, int start, int end) {
        for (int pair = start; pair < end; pair++) {
            int t = tokens[pair / heads];
            int h = pair % heads;
            if (absorbedPass) {
                absorbedHead(worker, t, h);
            } else {
                expandedHead(worker, t, h);
            }
        }
    }

    /** One (token, head) against the cached latents, {@code kv_b_proj} folded into the query and the output. */
    private void absorbedHead(int worker, int t, int h) {
        int pos = batch.position(t);
        KvCache cache = batch.cache(t);
        MemorySegment latents = cache.plane(LATENT);
        MemorySegment ropeKeys = cache.plane(ROPE_KEY);
        long qBase = (long) t * heads * qkDim + (long) h * qkDim;
        long aBase = (long) worker * lora;
        long sBase = (long) worker * maxPositions;
        int kRows = h * (nope + vDim);
        // q_abs = W_uk^T q_nope: the key up-projection moved onto the query.
        kvB.combineRows(q, qBase, kRows, nope, qAbs, aBase, rowScratch[worker]);
        int count = pos + 1;
        for (int p = 0; p < count; p++) {
            float s = Kernels.dot(qAbs, aBase, latents, cache.index(LATENT, layer, p), lora)
                    + Kernels.dot(q, qBase + nope, ropeKeys, cache.index(ROPE_KEY, layer, p), ropeDim);
            Kernels.set(scores, sBase + p, s * scale);
        }
        Kernels.softmax(scores, sBase, count);
        Kernels.scaleInto(Kernels.get(scores, sBase), latents, cache.index(LATENT, layer, 0), acc, aBase, lora);
        for (int p = 1; p < count; p++) {
            Kernels.axpy(Kernels.get(scores, sBase + p), latents, cache.index(LATENT, layer, p), acc, aBase, lora);
        }
        // o_h = W_uv (Σ a_p c_p): the value up-projection once, on the weighted latent.
        kvB.applyRows(acc, worker, headOut, worker, 1, kRows + nope, kRows + nope + vDim);
        MemorySegment.copy(headOut, ((long) worker * kvbRows + kRows + nope) * 4, attnOut,
                ((long) t * heads * vDim + (long) h * vDim) * 4, (long) vDim * 4);
    }

    /** One (token, head) against its sequence's keys and values expanded into {@link #expanded}. */
    private void expandedHead(int worker, int t, int h) {
        int pos = batch.position(t);
        KvCache cache = batch.cache(t);
        MemorySegment ropeKeys = cache.plane(ROPE_KEY);
        long qBase = (long) t * heads * qkDim + (long) h * qkDim;
        long sBase = (long) worker * maxPositions;
        int kOffset = h * (nope + vDim);
        int count = pos + 1;
        for (int p = 0; p < count; p++) {
            float s = Kernels.dot(q, qBase, expanded, (long) p * kvbRows + kOffset, nope)
                    + Kernels.dot(q, qBase + nope, ropeKeys, cache.index(ROPE_KEY, layer, p), ropeDim);
            Kernels.set(scores, sBase + p, s * scale);
        }
        Kernels.softmax(scores, sBase, count);
        long outIndex = (long) t * heads * vDim + (long) h * vDim;
        int vOffset = kOffset + nope;
        Kernels.scaleInto(Kernels.get(scores, sBase), expanded, vOffset, attnOut, outIndex, vDim);
        for (int p = 1; p < count; p++) {
            Kernels.axpy(Kernels.get(scores, sBase + p), expanded, (long) p * kvbRows + vOffset, attnOut, outIndex, vDim);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
