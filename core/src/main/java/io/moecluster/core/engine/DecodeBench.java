package io.moecluster.core.engine;

import io.moecluster.core.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * End-to-end decode throughput of an {@link Engine}: {@code batch} sequences of random prompt
 * tokens prefilled together, then decoded greedily in lock step for a fixed number of tokens
 * (EOS ignored, so every run does the same work). Prefill and decode are timed apart.
 */
public final class DecodeBench {
    private DecodeBench() {
    }

    /**
     * @param decodeSteps steps after the one that produced every sequence's first token
     * @param decodeTokens tokens those steps produced (batch × decodeSteps)
     */
    public record Result(int batch, int promptTokens, int newTokens, double prefillSeconds, double decodeSeconds,
                         int decodeSteps, int decodeTokens) {
        public double decodeTokensPerSecond() {
            return decodeTokens / decodeSeconds;
        }

        public double millisPerStep() {
            return decodeSeconds * 1000 / decodeSteps;
        }

        public double prefillTokensPerSecond() {
            return (double) batch * promptTokens / prefillSeconds;
        }
    }

    public static Result run(Engine engine, int batch, int promptTokens, int newTokens, long seed) {
        if (batch < 1 || promptTokens < 1 || newTokens < 2) {
            throw new IllegalArgumentException("need batch >= 1, prompt tokens >= 1 and new tokens >= 2");
        }
        int vocab = engine.config().vocabSize();
        BatchGenerator generator = new BatchGenerator(engine, batch);
        SplittableRandom rnd = new SplittableRandom(seed);
        SamplingParams params = SamplingParams.greedy(newTokens).withIgnoreEos(true);
        List<Sequence> sequences = new ArrayList<>(batch);
        for (int b = 0; b < batch; b++) {
            int[] prompt = new int[promptTokens];
            for (int i = 0; i < promptTokens; i++) {
                // Skip the low ids: in the generated tokenizers they are <unk>, <s> and </s>.
                prompt[i] = 3 + rnd.nextInt(vocab - 3);
            }
            sequences.add(generator.submit(prompt, params, TokenSink.NONE));
        }
        long start = System.nanoTime();
        while (!allStarted(sequences)) {
            generator.step();
        }
        long prefillEnd = System.nanoTime();
        int steps = 0;
        int tokens = 0;
        while (!generator.isIdle()) {
            tokens += generator.step();
            steps++;
        }
        long end = System.nanoTime();
        return new Result(batch, promptTokens, newTokens, (prefillEnd - start) / 1e9, (end - prefillEnd) / 1e9,
                steps, tokens);
    }

    private static boolean allStarted(List<Sequence> sequences) {
        for (Sequence s : sequences) {
            if (s.generatedCount() == 0) {
                return false;
            }
        }
        return true;
    }
}
