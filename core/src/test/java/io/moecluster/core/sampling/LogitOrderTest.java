package io.moecluster.core.sampling;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class LogitOrderTest {
    /** Reference order (boxed, test only): larger logit first, lower id on ties. */
    private static int[] reference(float[] logits, int n) {
        return IntStream.range(0, n).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> -logits[i]).thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    private static float[] logitsWithTies(SplittableRandom rnd, int n) {
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = rnd.nextInt(40) / 4f - 5f; // few distinct values: many ties
        }
        return logits;
    }

    @Test
    void sortMatchesReferenceOrder() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int n : new int[] {0, 1, 2, 3, 10, 257, 1000}) {
            float[] logits = logitsWithTies(rnd, n);
            int[] ids = IntStream.range(0, n).toArray();
            // Start from a shuffled order: the result must not depend on it.
            for (int i = n - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = ids[i];
                ids[i] = ids[j];
                ids[j] = t;
            }
            LogitOrder.sortDescending(logits, ids, n);
            assertThat(ids).as("n=%d", n).isEqualTo(reference(logits, n));
        }
    }

    @Test
    void selectTopKFindsTheKBest() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (int k : new int[] {1, 2, 5, 50, 999, 1000, 2000}) {
            float[] logits = logitsWithTies(rnd, 1000);
            int[] out = new int[1000];
            int got = LogitOrder.selectTopK(logits, 1000, k, out);
            assertThat(got).isEqualTo(Math.min(k, 1000));
            int[] selected = Arrays.copyOf(out, got);
            Arrays.sort(selected);
            int[] expected = Arrays.copyOf(reference(logits, 1000), got);
            Arrays.sort(expected);
            assertThat(selected).as("k=%d", k).isEqualTo(expected);
        }
    }
}
