package io.moecluster.core.attention;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.moe.LocalFeedForward;
import io.moecluster.core.testing.GoldenModels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The ping-pong pipeline ({@link Transformer#microBatches(int)} 2) against whole steps: the same
 * logits to the bit, for steps that mix prefill chunks and decode tokens of several sequences.
 * The feed-forward under test behaves as a remote one does: it copies the input at submit and
 * writes the output only when awaited, so a pipeline that read an answer before awaiting it, or
 * reused an input buffer too early, would differ.
 */
class PingPongTransformerTest {
    private static final EngineOptions OPTIONS = new EngineOptions(1, 32, 64);

    /** A feed-forward that runs elsewhere: submit only takes the request; await computes it. */
    static final class DeferredFeedForward implements FeedForward, AutoCloseable {
        private final LocalFeedForward local;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment[] inputs = new MemorySegment[MAX_IN_FLIGHT];
        private final MemorySegment[] outputs = new MemorySegment[MAX_IN_FLIGHT];
        private final int[] layers = new int[MAX_IN_FLIGHT];
        private final int[] tokens = new int[MAX_IN_FLIGHT];
        private final int hidden;

        DeferredFeedForward(LocalFeedForward local, int maxTokens, int hidden) {
            this.local = local;
            this.hidden = hidden;
            for (int s = 0; s < MAX_IN_FLIGHT; s++) {
                inputs[s] = arena.allocate((long) maxTokens * hidden * 4, 64);
            }
        }

        @Override
        public void forward(int layer, MemorySegment input, int n, MemorySegment output) {
            local.forward(layer, input, n, output);
        }

        @Override
        public void submit(int slot, int layer, MemorySegment input, int n, MemorySegment output) {
            assertThat(outputs[slot]).as("slot %d already has a layer in flight", slot).isNull();
            MemorySegment.copy(input, 0, inputs[slot], 0, (long) n * hidden * 4);
            outputs[slot] = output;
            layers[slot] = layer;
            tokens[slot] = n;
        }

        @Override
        public void await(int slot) {
            if (outputs[slot] != null) {
                local.forward(layers[slot], inputs[slot], tokens[slot], outputs[slot]);
                outputs[slot] = null;
            }
        }

        @Override
        public boolean overlaps() {
            return true;
        }

        @Override
        public void close() throws Exception {
            local.close();
            arena.close();
        }
    }

    static Engine pingPong(String model) {
        Engine engine = Engine.open(GoldenModels.dir(model), OPTIONS, (config, loader, backend, maxTokens) ->
                new DeferredFeedForward(new LocalFeedForward(config, loader, backend, maxTokens), maxTokens,
                        config.hiddenSize()));
        engine.transformer().microBatches(2);
        return engine;
    }

    /** The logits of each step of a fixed schedule: prefills of several lengths side by side, then decode steps. */
    static List<float[]> run(Engine engine) {
        Transformer t = engine.transformer();
        int vocab = engine.config().vocabSize();
        int[] lengths = {5, 1, 9, 3};
        List<KvCache> caches = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            caches.add(t.newKvCache(48));
        }
        List<float[]> out = new ArrayList<>();
        StepBatch batch = new StepBatch(t.maxBatchTokens());
        int[] next = new int[lengths.length];
        try {
            // Step 1: every prompt whole; logits for each prompt's last token and all of the first prompt's.
            for (int s = 0; s < lengths.length; s++) {
                for (int p = 0; p < lengths[s]; p++) {
                    batch.add(3 + (p * 31 + s * 17) % 250, p, caches.get(s), s == 0 || p == lengths[s] - 1);
                }
            }
            out.add(logits(engine.step(batch), batch.logitRows(), vocab));
            // Then decode steps of all four.
            for (int step = 0; step < 4; step++) {
                batch.clear();
                for (int s = 0; s < lengths.length; s++) {
                    batch.add(3 + (step * 7 + s * 13) % 250, lengths[s] + step, caches.get(s), true, true);
                }
                out.add(logits(engine.step(batch), batch.logitRows(), vocab));
            }
        } finally {
            caches.forEach(KvCache::close);
        }
        return out;
    }

    static float[] logits(MemorySegment logits, int rows, int vocab) {
        float[] a = new float[rows * vocab];
        MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, 0, a, 0, a.length);
        return a;
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE, GoldenModels.DEEPSEEK_V3})
    void twoMicroBatchesGiveTheSameLogitsToTheBit(String model) {
        List<float[]> whole;
        try (Engine engine = Engine.open(GoldenModels.dir(model), OPTIONS)) {
            whole = run(engine);
        }
        try (Engine engine = pingPong(model)) {
            List<float[]> split = run(engine);
            assertThat(engine.transformer().pingPongSteps()).as("steps split in two").isEqualTo(whole.size());
            for (int i = 0; i < whole.size(); i++) {
                assertThat(split.get(i)).as("%s step %d", model, i).containsExactly(whole.get(i));
            }
        }
    }

    @Test
    void aStepOfOneSequenceOrWithoutAnOverlappingFeedForwardStaysWhole() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), OPTIONS)) {
            engine.transformer().microBatches(2); // the in-process MoE block does not overlap
            run(engine);
            assertThat(engine.transformer().pingPongSteps()).isZero();
        }
        try (Engine engine = pingPong(GoldenModels.MIXTRAL); KvCache cache = engine.transformer().newKvCache(8)) {
            StepBatch batch = new StepBatch(8);
            for (int p = 0; p < 6; p++) {
                batch.add(5 + p, p, cache, p == 5);
            }
            engine.step(batch);
            assertThat(engine.transformer().pingPongSteps()).isZero();
        }
    }

    @Test
    void theSplitIsTheSequenceBoundaryNearestHalfTheTokens() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), OPTIONS)) {
            Transformer t = engine.transformer();
            KvCache a = t.newKvCache(8);
            KvCache b = t.newKvCache(8);
            KvCache c = t.newKvCache(8);
            try {
                assertThat(Transformer.splitPoint(batch(a, a, a))).isZero();
                assertThat(Transformer.splitPoint(batch(a, b))).isEqualTo(1);
                assertThat(Transformer.splitPoint(batch(a, b, c, c, c, c))).isEqualTo(2);
                assertThat(Transformer.splitPoint(batch(a, a, a, a, a, b))).isEqualTo(5);
                assertThat(Transformer.splitPoint(batch(a, b, c, a))).as("a sequence on both sides").isZero();
            } finally {
                a.close();
                b.close();
                c.close();
            }
        }
    }

    private static StepBatch batch(KvCache... caches) {
        StepBatch batch = new StepBatch(caches.length);
        int[] positions = new int[caches.length];
        for (int i = 0; i < caches.length; i++) {
            int p = 0;
            for (int j = 0; j < i; j++) {
                p += caches[j] == caches[i] ? 1 : 0;
            }
            positions[i] = p;
            batch.add(3, positions[i], caches[i], false);
        }
        return batch;
    }
}
