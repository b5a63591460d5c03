package io.moecluster.core.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.Sampler;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.sampling.TokenLogprobs;
import io.moecluster.core.testing.GoldenModels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Each sampling control against an expectation computed here by hand, in double precision, from
 * the golden model's logits: the golden reference rows (float64 implementation) for the first
 * token, the engine's own prefill of the prompt plus the tokens so far for later ones.
 */
class SamplingControlsTest {
    static Engine engine;
    static GoldenModels.Case sentence;

    @BeforeAll
    static void open() throws Exception {
        engine = Engine.open(GoldenModels.dir(GoldenModels.MIXTRAL), new EngineOptions(1, 64, 256));
        sentence = GoldenModels.cases(GoldenModels.MIXTRAL).stream().filter(c -> c.name().equals("sentence"))
                .findFirst().orElseThrow();
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    /** What one sequence generated, with a copy of each step's log-probabilities when asked. */
    static final class Recorded implements TokenSink {
        final List<Integer> tokens = new ArrayList<>();
        final List<float[]> logprobs = new ArrayList<>();
        final List<int[]> topIds = new ArrayList<>();
        FinishReason finish;

        @Override
        public void onToken(int token) {
            tokens.add(token);
        }

        @Override
        public void onToken(int token, TokenLogprobs lp) {
            tokens.add(token);
            if (lp != null) {
                assertThat(lp.token()).isEqualTo(token);
                float[] values = new float[1 + lp.topCount()];
                int[] ids = new int[lp.topCount()];
                values[0] = lp.logprob();
                for (int r = 0; r < lp.topCount(); r++) {
                    values[1 + r] = lp.topLogprob(r);
                    ids[r] = lp.topId(r);
                }
                logprobs.add(values);
                topIds.add(ids);
            }
        }

        @Override
        public void onFinish(FinishReason reason) {
            finish = reason;
        }

        int[] ids() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    static Recorded run(int[] prompt, SamplingParams params) {
        BatchGenerator gen = new BatchGenerator(engine, 4);
        Recorded r = new Recorded();
        gen.submit(prompt, params, r);
        gen.runToCompletion();
        return r;
    }

    /** The raw logits of the position after {@code prompt + generated[0, upTo)}. */
    static float[] rawRow(int[] prompt, int[] generated, int upTo) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + upTo);
        System.arraycopy(generated, 0, seq, prompt.length, upTo);
        float[][] rows = engine.prefillLogits(seq);
        return rows[rows.length - 1];
    }

    static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static int argmax(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return argmax(d);
    }

    /** vLLM's and transformers' penalties, written out: repetition over prompt + output, then frequency and presence over output. */
    static double[] penalized(float[] raw, int[] prompt, int[] generated, int upTo, double presence, double frequency,
                              double repetition) {
        double[] out = new double[raw.length];
        int[] counts = new int[raw.length];
        boolean[] seen = new boolean[raw.length];
        for (int t : prompt) {
            seen[t] = true;
        }
        for (int i = 0; i < upTo; i++) {
            counts[generated[i]]++;
            seen[generated[i]] = true;
        }
        for (int v = 0; v < raw.length; v++) {
            double l = raw[v];
            if (seen[v]) {
                l = l > 0 ? l / repetition : l * repetition;
            }
            l -= frequency * counts[v] + presence * (counts[v] > 0 ? 1 : 0);
            out[v] = l;
        }
        return out;
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfPromptAndOutputTokens() {
        int[] prompt = sentence.tokens();
        double penalty = 1.8;
        // First token against the float64 reference's row: the prompt's tokens are penalised.
        float[] golden = sentence.logits()[prompt.length - 1];
        int[] first = run(prompt, SamplingParams.greedy(1).withIgnoreEos(true).withPenalties(0, 0, penalty)).ids();
        assertThat(first[0]).isEqualTo(argmax(penalized(golden, prompt, new int[0], 0, 0, 0, penalty)));

        int[] generated = run(prompt, SamplingParams.greedy(12).withIgnoreEos(true).withPenalties(0, 0, penalty)).ids();
        for (int t = 0; t < generated.length; t++) {
            double[] expected = penalized(rawRow(prompt, generated, t), prompt, generated, t, 0, 0, penalty);
            assertThat(generated[t]).as("token %d", t).isEqualTo(argmax(expected));
        }
        int[] plain = run(prompt, SamplingParams.greedy(12).withIgnoreEos(true)).ids();
        assertThat(generated).as("the penalty changes what greedy picks").isNotEqualTo(plain);
    }

    @Test
    void frequencyAndPresencePenaltiesSubtractPerGeneratedOccurrence() {
        int[] prompt = sentence.tokens();
        SamplingParams params = SamplingParams.greedy(16).withIgnoreEos(true).withPenalties(0.4, 0.7, 1);
        int[] generated = run(prompt, params).ids();
        for (int t = 0; t < generated.length; t++) {
            double[] expected = penalized(rawRow(prompt, generated, t), prompt, generated, t, 0.4, 0.7, 1);
            assertThat(generated[t]).as("token %d", t).isEqualTo(argmax(expected));
        }
        // The prompt's tokens are not penalised by these two: the first token is plain greedy's.
        int[] plain = run(prompt, SamplingParams.greedy(16).withIgnoreEos(true)).ids();
        assertThat(generated[0]).isEqualTo(plain[0]).isEqualTo(argmax(sentence.logits()[prompt.length - 1]));
        assertThat(generated).as("the penalties change what greedy picks").isNotEqualTo(plain);
        // Plain greedy repeats itself on this model; with the penalties no token comes back 4 times.
        assertThat(maxCount(generated)).isLessThan(maxCount(plain));
    }

    static int maxCount(int[] tokens) {
        int[] counts = new int[engine.config().vocabSize()];
        int max = 0;
        for (int t : tokens) {
            max = Math.max(max, ++counts[t]);
        }
        return max;
    }

    /** The sampler's draw written out: weights exp((l - max) / T) in id order, min-p zeroes those below minP, one uniform draw. */
    static int expectedDraw(float[] logits, double temperature, double minP, long seed) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] w = new double[logits.length];
        double total = 0;
        for (int v = 0; v < logits.length; v++) {
            w[v] = Math.exp((logits[v] - max) / temperature);
            if (w[v] < minP) {
                w[v] = 0;
            }
            total += w[v];
        }
        double r = new SplittableRandom(seed).nextDouble() * total;
        double cumulative = 0;
        for (int v = 0; v < logits.length; v++) {
            cumulative += w[v];
            if (r < cumulative) {
                return v;
            }
        }
        throw new AssertionError("no token drawn");
    }

    @Test
    void minPKeepsOnlyTokensAtLeastThatLikelyRelativeToTheBest() {
        int[] prompt = sentence.tokens();
        float[] golden = sentence.logits()[prompt.length - 1];
        double temperature = 1.5;
        double max = golden[argmax(golden)];
        // A min-p between the 5th and 6th largest relative probabilities keeps exactly 5 tokens.
        double[] relative = new double[golden.length];
        for (int v = 0; v < golden.length; v++) {
            relative[v] = Math.exp((golden[v] - max) / temperature);
        }
        Arrays.sort(relative);
        double minP = (relative[golden.length - 5] + relative[golden.length - 6]) / 2;
        Set<Integer> allowed = new HashSet<>();
        for (int v = 0; v < golden.length; v++) {
            if (Math.exp((golden[v] - max) / temperature) >= minP) {
                allowed.add(v);
            }
        }
        assertThat(allowed).hasSize(5);
        Set<Integer> drawn = new HashSet<>();
        Set<Integer> drawnWithout = new HashSet<>();
        for (long seed = 0; seed < 60; seed++) {
            SamplingParams p = new SamplingParams(temperature, 0, 1, seed, 1, null, true).withMinP(minP);
            // The sampler on the reference row draws exactly the token computed by hand...
            assertThat(new Sampler(golden.length, p).sample(golden.clone())).isEqualTo(expectedDraw(golden, temperature,
                    minP, seed));
            // ... and the engine's first token of the same prompt is one of the allowed ones.
            int token = run(prompt, p).ids()[0];
            assertThat(allowed).contains(token);
            drawn.add(token);
            drawnWithout.add(new Sampler(golden.length, p.withMinP(0)).sample(golden.clone()));
        }
        assertThat(drawn).as("more than the best token is drawn").hasSizeGreaterThan(1);
        assertThat(drawnWithout).as("without min-p, tokens outside the set are drawn").isNotEmpty()
                .anyMatch(t -> !allowed.contains(t));
    }

    @Test
    void logprobsAreTheLogSoftmaxOfTheRawLogitsBeforePenalties() {
        int[] prompt = sentence.tokens();
        // A strong repetition penalty changes the sampled tokens, not the reported distribution.
        SamplingParams params = SamplingParams.greedy(6).withIgnoreEos(true).withPenalties(0, 0, 1.8).withLogprobs(5);
        Recorded r = run(prompt, params);
        int[] generated = r.ids();
        assertThat(r.logprobs).hasSize(generated.length);
        for (int t = 0; t < generated.length; t++) {
            float[] raw = t == 0 ? sentence.logits()[prompt.length - 1] : rawRow(prompt, generated, t);
            double[] logSoftmax = logSoftmax(raw);
            assertThat((double) r.logprobs.get(t)[0]).as("sampled token at %d", t)
                    .isCloseTo(logSoftmax[generated[t]], within(1e-4));
            Integer[] order = new Integer[raw.length];
            for (int v = 0; v < raw.length; v++) {
                order[v] = v;
            }
            Arrays.sort(order, (a, b) -> raw[a] != raw[b] ? Float.compare(raw[b], raw[a]) : Integer.compare(a, b));
            for (int k = 0; k < 5; k++) {
                assertThat(r.topIds.get(t)[k]).as("rank %d at %d", k, t).isEqualTo(order[k]);
                assertThat((double) r.logprobs.get(t)[1 + k]).isCloseTo(logSoftmax[order[k]], within(1e-4));
            }
        }
        double sum = 0;
        for (double lp : logSoftmax(sentence.logits()[prompt.length - 1])) {
            sum += Math.exp(lp);
        }
        assertThat(sum).isCloseTo(1, within(1e-9));
    }

    static double[] logSoftmax(float[] raw) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : raw) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : raw) {
            sum += Math.exp(l - max);
        }
        double lse = max + Math.log(sum);
        double[] out = new double[raw.length];
        for (int v = 0; v < raw.length; v++) {
            out[v] = raw[v] - lse;
        }
        return out;
    }

    @Test
    void sameSeedSameTokensAndAnotherSeedOthers() {
        int[] prompt = sentence.tokens();
        SamplingParams p = new SamplingParams(1.0, 0, 1, 42, 12, null, true);
        int[] a = run(prompt, p).ids();
        assertThat(run(prompt, p).ids()).isEqualTo(a);
        assertThat(run(prompt, p.withSeed(43)).ids()).isNotEqualTo(a);
        // The first draw is the one computed by hand from the reference row.
        assertThat(a[0]).isEqualTo(expectedDraw(sentence.logits()[prompt.length - 1], 1.0, 0, 42));
    }

    /** Counts the tokens the engine processes, to show a group's prompt is prefilled once. */
    static int runCounting(BatchGenerator gen) {
        int tokens = 0;
        while (!gen.isIdle()) {
            tokens += gen.step();
        }
        return tokens;
    }

    @Test
    void nCompletionsShareOnePrefillAndEachIsTheSingleRequestWithSeedPlusIndex() {
        int[] prompt = sentence.tokens();
        int maxTokens = 8;
        SamplingParams p = new SamplingParams(0.9, 0, 1, 7, maxTokens, null, true).withLogprobs(2);
        BatchGenerator gen = new BatchGenerator(engine, 4);
        Recorded[] group = {new Recorded(), new Recorded(), new Recorded()};
        Sequence[] seqs = gen.submitGroup(prompt, p, group);
        assertThat(seqs).extracting(Sequence::index).containsExactly(0, 1, 2);
        int processed = runCounting(gen);
        // One prefill of the prompt, then each completion feeds back all but its last token.
        assertThat(processed).isEqualTo(prompt.length + 3 * (maxTokens - 1));
        for (int i = 0; i < group.length; i++) {
            Recorded alone = run(prompt, p.withSeed(7 + i));
            assertThat(group[i].ids()).as("completion %d", i).isEqualTo(alone.ids());
            assertThat(group[i].finish).isEqualTo(FinishReason.LENGTH);
            for (int t = 0; t < maxTokens; t++) {
                assertThat(group[i].logprobs.get(t)).isEqualTo(alone.logprobs.get(t));
            }
        }
        assertThat(group[0].ids()).isNotEqualTo(group[1].ids());
        // Greedy completions of one group are all the greedy completion.
        BatchGenerator greedyGen = new BatchGenerator(engine, 2);
        Recorded[] greedy = {new Recorded(), new Recorded()};
        greedyGen.submitGroup(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true), greedy);
        greedyGen.runToCompletion();
        int[] single = run(prompt, SamplingParams.greedy(maxTokens).withIgnoreEos(true)).ids();
        assertThat(greedy[0].ids()).isEqualTo(single);
        assertThat(greedy[1].ids()).isEqualTo(single);
    }

    @Test
    void aGroupWaitsUntilItFitsAndCancellingItsLeaderBeforeTheForkCancelsItAll() {
        int[] prompt = sentence.tokens();
        BatchGenerator gen = new BatchGenerator(engine, 3);
        Recorded one = new Recorded();
        gen.submit(prompt, SamplingParams.greedy(5).withIgnoreEos(true), one);
        Recorded[] pair = {new Recorded(), new Recorded(), new Recorded()};
        Sequence[] group = gen.submitGroup(prompt, SamplingParams.greedy(5).withIgnoreEos(true), pair);
        gen.step();
        assertThat(gen.runningCount()).as("the group of 3 does not fit beside the single sequence").isEqualTo(1);
        gen.runToCompletion();
        assertThat(pair).allSatisfy(r -> assertThat(r.tokens).hasSize(5));
        assertThat(group).allSatisfy(s -> assertThat(s.isFinished()).isTrue());

        // Cancelled while waiting: none of the group ever runs.
        Recorded[] cancelled = {new Recorded(), new Recorded()};
        Sequence[] g = gen.submitGroup(prompt, SamplingParams.greedy(5).withIgnoreEos(true), cancelled);
        assertThat(gen.cancel(g[0])).isTrue();
        assertThat(g[1].isFinished()).isTrue();
        assertThat(gen.isIdle()).isTrue();
    }
}
