package io.moecluster.cuda.check;

import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import java.util.Arrays;
import java.util.Locale;

/**
 * Greedy tokens of two engines on one prompt (a reference, e.g. the CPU engine, and a candidate,
 * e.g. the same model with its experts on a GPU): equal, or the first position where they differ
 * and how close the reference's choice was there (the gap between its top two logits, and how far
 * below its top logit the candidate's token was). A tiny gap explains a divergence by rounding.
 */
public record GreedyComparison(int[] reference, int[] candidate, int firstDivergence, double referenceTop2Gap,
                               double candidateTokenGap) {
    public static GreedyComparison of(Engine reference, Engine candidate, int[] prompt, int tokens) {
        int[] a = greedy(reference, prompt, tokens);
        int[] b = greedy(candidate, prompt, tokens);
        int d = 0;
        while (d < Math.min(a.length, b.length) && a[d] == b[d]) {
            d++;
        }
        if (d == a.length && d == b.length) {
            return new GreedyComparison(a, b, -1, Double.NaN, Double.NaN);
        }
        if (d >= a.length || d >= b.length) {
            return new GreedyComparison(a, b, d, Double.NaN, Double.NaN);
        }
        int[] context = Arrays.copyOf(prompt, prompt.length + d);
        System.arraycopy(a, 0, context, prompt.length, d);
        float[][] logits = reference.prefillLogits(context);
        float[] row = logits[logits.length - 1];
        int top = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[top]) {
                top = i;
            }
        }
        float second = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < row.length; i++) {
            if (i != top && row[i] > second) {
                second = row[i];
            }
        }
        return new GreedyComparison(a, b, d, row[top] - second, row[top] - row[b[d]]);
    }

    /** {@code tokens} greedy tokens after {@code prompt}, end-of-sequence ignored. */
    public static int[] greedy(Engine engine, int[] prompt, int tokens) {
        BatchGenerator g = new BatchGenerator(engine, 1);
        Sequence s = g.submit(prompt, SamplingParams.greedy(tokens).withIgnoreEos(true), new TokenSink() {
            @Override
            public void onToken(int token) {
            }

            @Override
            public void onFinish(FinishReason reason) {
            }
        });
        g.runToCompletion();
        return s.generatedTokens();
    }

    public boolean equal() {
        return firstDivergence < 0;
    }

    public String describe() {
        if (equal()) {
            return "equal (" + reference.length + " tokens)";
        }
        if (Double.isNaN(referenceTop2Gap)) {
            return "lengths differ: " + reference.length + " vs " + candidate.length + " tokens";
        }
        return String.format(Locale.ROOT, "first divergence at generated token %d: reference %d, candidate %d; "
                        + "there the reference's top-2 logit gap is %.4g and the candidate's token is %.4g below its top",
                firstDivergence, reference[firstDivergence], candidate[firstDivergence], referenceTop2Gap, candidateTokenGap);
    }
}
