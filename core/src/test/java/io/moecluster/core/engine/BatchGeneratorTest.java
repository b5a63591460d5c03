package io.moecluster.core.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.testing.GoldenModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class BatchGeneratorTest {
    /** Greedy continuation by re-running the whole prefix for every token: slow, but shares no KV-cache code. */
    static int[] naiveGreedy(Engine engine, int[] prompt, int n) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + n);
        for (int i = 0; i < n; i++) {
            float[][] logits = engine.prefillLogits(Arrays.copyOf(seq, prompt.length + i));
            float[] last = logits[logits.length - 1];
            int best = 0;
            for (int v = 1; v < last.length; v++) {
                if (last[v] > last[best]) {
                    best = v;
                }
            }
            seq[prompt.length + i] = best;
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    static int[] prompt(int length, int salt) {
        int[] p = new int[length];
        p[0] = 1;
        for (int i = 1; i < length; i++) {
            p[i] = 3 + (i * 37 + salt * 101) % 250;
        }
        return p;
    }

    /**
     * Issue 13, defect 2: a short request that arrives while a long prompt is being prefilled is
     * not stuck behind it. Counted in steps and tokens, not time: with a budget of 8 tokens a step,
     * a 120-token prompt needs 15+ steps of prefill; the 2-token request sent during it is
     * prefilled in the next step and done 2 steps later, while a sequence already decoding gets
     * one token in every step (decode first) and no step holds more than the budget. Every
     * sequence still gets its own greedy tokens.
     */
    @Test
    void aShortRequestIsNotStuckBehindALongPrefill() {
        int budget = 8;
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), new EngineOptions(1, budget, 256))) {
            BatchGenerator gen = new BatchGenerator(engine, 4);
            Sequence decoding = gen.submit(prompt(3, 7), SamplingParams.greedy(30).withIgnoreEos(true), TokenSink.NONE);
            gen.step();
            Sequence longPrompt = gen.submit(prompt(120, 1), SamplingParams.greedy(4).withIgnoreEos(true), TokenSink.NONE);
            gen.step();
            gen.step();
            int longLeft = longPrompt.promptRemaining();
            assertThat(longLeft).as("the long prompt is being prefilled").isBetween(100, 119);
            Sequence shortRequest = gen.submit(prompt(2, 2), SamplingParams.greedy(3).withIgnoreEos(true), TokenSink.NONE);
            int steps = 0;
            while (!shortRequest.isFinished()) {
                int decodedBefore = decoding.generatedCount();
                int tokens = gen.step();
                steps++;
                assertThat(tokens).as("step %d", steps).isBetween(1, budget);
                assertThat(decoding.generatedCount()).as("decode first: a token per step").isEqualTo(decodedBefore + 1);
                assertThat(steps).as("steps the short request took").isLessThanOrEqualTo(3);
            }
            assertThat(steps).isEqualTo(3);
            assertThat(longPrompt.promptRemaining()).as("still prefilling the long prompt").isPositive();
            assertThat(longPrompt.promptRemaining()).as("and it made progress").isLessThan(longLeft);
            gen.runToCompletion();
            assertThat(shortRequest.generatedTokens()).containsExactly(naiveGreedy(engine, prompt(2, 2), 3));
            assertThat(longPrompt.generatedTokens()).containsExactly(naiveGreedy(engine, prompt(120, 1), 4));
            assertThat(decoding.generatedTokens()).containsExactly(naiveGreedy(engine, prompt(3, 7), 30));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE})
    void continuousBatchingGivesEachSequenceItsOwnGreedyTokens(String model) {
        // Small steps (7 tokens) force chunked prefill alongside decoding; sequences join mid-flight.
        try (Engine engine = Engine.open(GoldenModels.dir(model), new EngineOptions(2, 7, 64))) {
            BatchGenerator gen = new BatchGenerator(engine, 3);
            int[] lengths = {3, 12, 5, 20, 1};
            int newTokens = 10;
            SamplingParams greedy = SamplingParams.greedy(newTokens).withIgnoreEos(true);
            List<Sequence> seqs = new ArrayList<>();
            seqs.add(gen.submit(prompt(lengths[0], 0), greedy, TokenSink.NONE));
            seqs.add(gen.submit(prompt(lengths[1], 1), greedy, TokenSink.NONE));
            gen.step();
            gen.step();
            for (int i = 2; i < lengths.length; i++) {
                seqs.add(gen.submit(prompt(lengths[i], i), greedy, TokenSink.NONE));
                gen.step();
            }
            gen.runToCompletion();
            for (int i = 0; i < lengths.length; i++) {
                Sequence s = seqs.get(i);
                assertThat(s.finishReason()).isEqualTo(FinishReason.LENGTH);
                assertThat(s.generatedTokens()).as("sequence %d", i)
                        .containsExactly(naiveGreedy(engine, prompt(lengths[i], i), newTokens));
            }
        }
    }

    @Test
    void stopsOnStopTokensAndReportsIt() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), EngineOptions.defaults())) {
            int[] p = prompt(6, 9);
            int[] free = naiveGreedy(engine, p, 6);
            BatchGenerator gen = new BatchGenerator(engine, 4);
            List<Integer> streamed = new ArrayList<>();
            FinishReason[] finished = new FinishReason[1];
            Sequence s = gen.submit(p, new SamplingParams(0, 0, 1, 0, 50, new int[] {free[3]}), new TokenSink() {
                @Override
                public void onToken(int token) {
                    streamed.add(token);
                }

                @Override
                public void onFinish(FinishReason reason) {
                    finished[0] = reason;
                }
            });
            gen.runToCompletion();
            int firstStop = 0;
            while (free[firstStop] != free[3]) {
                firstStop++;
            }
            assertThat(s.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(finished[0]).isEqualTo(FinishReason.STOP);
            assertThat(s.generatedTokens()).containsExactly(Arrays.copyOf(free, firstStop));
            assertThat(streamed).containsExactly(Arrays.stream(Arrays.copyOf(free, firstStop)).boxed().toArray(Integer[]::new));
            assertThat(s.timeToFirstTokenNanos()).isPositive();
        }
    }

    @Test
    void rejectsRequestsItCannotServe() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), new EngineOptions(1, 16, 32))) {
            BatchGenerator gen = new BatchGenerator(engine, 2);
            assertThatThrownBy(() -> gen.submit(new int[0], SamplingParams.greedy(4), TokenSink.NONE))
                    .hasMessageContaining("prompt is empty");
            assertThatThrownBy(() -> gen.submit(new int[] {1, 300}, SamplingParams.greedy(4), TokenSink.NONE))
                    .hasMessageContaining("prompt token 1 = 300 is outside the vocabulary");
            assertThatThrownBy(() -> gen.submit(prompt(30, 1), SamplingParams.greedy(4), TokenSink.NONE))
                    .hasMessageContaining("exceeds max-seq-len 32");
            assertThat(gen.isIdle()).isTrue();
        }
    }

    @Test
    void cancelEndsAWaitingOrRunningSequenceAndTheOthersCarryOn() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), new EngineOptions(1, 16, 64))) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            SamplingParams greedy = SamplingParams.greedy(5).withIgnoreEos(true);
            Sequence running = gen.submit(prompt(4, 1), greedy, TokenSink.NONE);
            Sequence waiting = gen.submit(prompt(4, 2), greedy, TokenSink.NONE);
            Sequence kept = gen.submit(prompt(4, 3), greedy, TokenSink.NONE);
            gen.step();
            assertThat(gen.runningCount()).isEqualTo(1);
            assertThat(gen.cancel(running)).isTrue();
            assertThat(gen.cancel(waiting)).isTrue();
            assertThat(gen.cancel(waiting)).isFalse();
            assertThat(gen.runningCount()).isZero();
            assertThat(gen.waitingCount()).isEqualTo(1);
            gen.runToCompletion();
            assertThat(running.finishReason()).isEqualTo(FinishReason.CANCELLED);
            assertThat(waiting.finishReason()).isEqualTo(FinishReason.CANCELLED);
            assertThat(kept.generatedTokens()).containsExactly(naiveGreedy(engine, prompt(4, 3), 5));
        }
    }

    @Test
    void abortRunningEndsOnlyRunningSequences() {
        try (Engine engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), new EngineOptions(1, 16, 64))) {
            BatchGenerator gen = new BatchGenerator(engine, 1);
            SamplingParams greedy = SamplingParams.greedy(3).withIgnoreEos(true);
            Sequence first = gen.submit(prompt(4, 1), greedy, TokenSink.NONE);
            Sequence second = gen.submit(prompt(4, 2), greedy, TokenSink.NONE);
            gen.step();
            assertThat(gen.abortRunning()).containsExactly(first);
            assertThat(first.finishReason()).isEqualTo(FinishReason.CANCELLED);
            gen.runToCompletion();
            assertThat(second.generatedTokens()).containsExactly(naiveGreedy(engine, prompt(4, 2), 3));
        }
    }
}
