package io.moecluster.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
    private static final int VOCAB = 1000;

    private static SamplingParams params(double temperature, int topK, double topP, long seed) {
        return new SamplingParams(temperature, topK, topP, seed, 16, new int[0]);
    }

    /** Random logits with a spread typical of a model's output. */
    private static float[] randomLogits(SplittableRandom rnd, int n) {
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (float) (rnd.nextGaussian() * 3);
        }
        return logits;
    }

    private static int argmax(float[] logits, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void greedyPicksArgmaxWithLowestIndexOnTies() {
        Sampler s = new Sampler(5, SamplingParams.greedy(10));
        assertThat(s.sample(new float[] {0.1f, 3f, -2f, 2.9f, 1f})).isEqualTo(1);
        assertThat(s.sample(new float[] {1f, 5f, 2f, 5f, 5f})).isEqualTo(1);
        assertThat(s.sample(new float[] {Float.NEGATIVE_INFINITY, -50f, -60f, -50f, -70f})).isEqualTo(1);
        // Values beyond vocabSize (padding rows of the LM head) are ignored.
        assertThat(s.sample(new float[] {0f, 1f, 2f, 3f, 4f, 100f})).isEqualTo(4);
    }

    @Test
    void sameSeedGivesSameSequenceAndDifferentSeedsDiffer() {
        SplittableRandom rnd = new SplittableRandom(7);
        float[][] steps = new float[200][];
        for (int t = 0; t < steps.length; t++) {
            steps[t] = randomLogits(rnd, VOCAB);
        }
        int[] a = run(new Sampler(VOCAB, params(1.0, 50, 0.9, 42)), steps);
        int[] b = run(new Sampler(VOCAB, params(1.0, 50, 0.9, 42)), steps);
        int[] c = run(new Sampler(VOCAB, params(1.0, 50, 0.9, 43)), steps);
        assertThat(a).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
        // Not degenerate: sampling really does stray from greedy.
        int[] greedy = run(new Sampler(VOCAB, SamplingParams.greedy(1)), steps);
        assertThat(a).isNotEqualTo(greedy);
    }

    private static int[] run(Sampler s, float[][] steps) {
        int[] out = new int[steps.length];
        for (int t = 0; t < steps.length; t++) {
            out[t] = s.sample(steps[t]);
        }
        return out;
    }

    @Test
    void topKOneIsGreedyAtAnyTemperature() {
        SplittableRandom rnd = new SplittableRandom(1);
        for (double temperature : new double[] {0.1, 1.0, 5.0, 100.0}) {
            Sampler s = new Sampler(VOCAB, params(temperature, 1, 1.0, 3));
            for (int t = 0; t < 50; t++) {
                float[] logits = randomLogits(rnd, VOCAB);
                assertThat(s.sample(logits)).isEqualTo(argmax(logits, VOCAB));
            }
        }
    }

    @Test
    void tinyTopPIsGreedy() {
        SplittableRandom rnd = new SplittableRandom(2);
        for (double temperature : new double[] {0.5, 1.0, 10.0}) {
            Sampler s = new Sampler(VOCAB, params(temperature, 0, 1e-6, 5));
            for (int t = 0; t < 50; t++) {
                float[] logits = randomLogits(rnd, VOCAB);
                assertThat(s.sample(logits)).isEqualTo(argmax(logits, VOCAB));
            }
        }
        // Ties resolve to the lowest index, as in greedy.
        Sampler s = new Sampler(4, params(1.0, 0, 1e-6, 5));
        assertThat(s.sample(new float[] {0f, 2f, 1f, 2f})).isEqualTo(1);
    }

    @Test
    void frequenciesMatchSoftmaxAtTemperatureOne() {
        float[] logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
        double[] expected = softmax(logits, 1.0);
        double[] freq = frequencies(new Sampler(logits.length, params(1.0, 0, 1.0, 12345)), logits, 20_000);
        for (int i = 0; i < logits.length; i++) {
            assertThat(freq[i]).as("token %d", i).isCloseTo(expected[i], within(0.02));
        }
    }

    @Test
    void temperatureSharpensAndFlattens() {
        float[] logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
        for (double temperature : new double[] {0.5, 2.0}) {
            double[] expected = softmax(logits, temperature);
            double[] freq = frequencies(new Sampler(logits.length, params(temperature, 0, 1.0, 99)), logits, 20_000);
            for (int i = 0; i < logits.length; i++) {
                assertThat(freq[i]).as("T=%s token %d", temperature, i).isCloseTo(expected[i], within(0.02));
            }
        }
    }

    @Test
    void topPKeepsTheSmallestNucleusAndRenormalises() {
        // Probabilities 0.5, 0.25, 0.125, 0.125: topP 0.7 keeps tokens 2 and 0 (0.75 >= 0.7).
        float[] logits = {(float) Math.log(0.25), (float) Math.log(0.125), (float) Math.log(0.5),
                (float) Math.log(0.125)};
        double[] freq = frequencies(new Sampler(4, params(1.0, 0, 0.7, 8)), logits, 20_000);
        assertThat(freq[2]).isCloseTo(2.0 / 3, within(0.02));
        assertThat(freq[0]).isCloseTo(1.0 / 3, within(0.02));
        assertThat(freq[1]).isZero();
        assertThat(freq[3]).isZero();
    }

    @Test
    void topKTwoNeverLeavesTheTopTwo() {
        SplittableRandom rnd = new SplittableRandom(11);
        Sampler s = new Sampler(VOCAB, params(5.0, 2, 1.0, 17)); // high temperature: others would be likely
        boolean[] seen = new boolean[2];
        for (int t = 0; t < 2000; t++) {
            float[] logits = randomLogits(rnd, VOCAB);
            int first = argmax(logits, VOCAB);
            float saved = logits[first];
            logits[first] = Float.NEGATIVE_INFINITY;
            int second = argmax(logits, VOCAB);
            logits[first] = saved;
            int token = s.sample(logits);
            assertThat(token).isIn(first, second);
            seen[token == first ? 0 : 1] = true;
        }
        assertThat(seen).containsOnly(true);
    }

    @Test
    void topKAndTopPCombine() {
        // topK 3 keeps tokens 0,1,2 (probabilities 4:2:1 after renormalising); topP 0.8 then keeps 0 and 1.
        float[] logits = {(float) Math.log(4), (float) Math.log(2), 0f, -1f, -2f};
        double[] freq = frequencies(new Sampler(5, params(1.0, 3, 0.8, 21)), logits, 20_000);
        assertThat(freq[0]).isCloseTo(2.0 / 3, within(0.02));
        assertThat(freq[1]).isCloseTo(1.0 / 3, within(0.02));
        assertThat(freq[2] + freq[3] + freq[4]).isZero();
    }

    @Test
    void extremeLogitsStayFinite() {
        Sampler s = new Sampler(4, params(1.0, 0, 1.0, 1));
        assertThat(s.sample(new float[] {-1e30f, 1e30f, Float.NEGATIVE_INFINITY, 0f})).isEqualTo(1);
        assertThat(s.sample(new float[] {0f, Float.POSITIVE_INFINITY, 0f, Float.POSITIVE_INFINITY})).isEqualTo(1);
        Sampler cold = new Sampler(3, params(1e-4, 0, 1.0, 1));
        assertThat(cold.sample(new float[] {1f, 3f, 2.99f})).isEqualTo(1);
    }

    @Test
    void rejectsBadLogits() {
        Sampler s = new Sampler(4, params(1.0, 0, 1.0, 1));
        assertThatThrownBy(() -> s.sample(new float[3]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("vocabSize 4");
        assertThatThrownBy(() -> s.sample(new float[] {0f, Float.NaN, 0f, 0f}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token 1 is NaN");
        float[] allNegInf = new float[4];
        Arrays.fill(allNegInf, Float.NEGATIVE_INFINITY);
        assertThatThrownBy(() -> s.sample(allNegInf))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-infinity");
        assertThatThrownBy(() -> new Sampler(0, SamplingParams.greedy(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("vocabSize");
    }

    private static double[] softmax(float[] logits, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private static double[] frequencies(Sampler s, float[] logits, int draws) {
        double[] freq = new double[logits.length];
        for (int t = 0; t < draws; t++) {
            freq[s.sample(logits)]++;
        }
        for (int i = 0; i < freq.length; i++) {
            freq[i] /= draws;
        }
        return freq;
    }
}
