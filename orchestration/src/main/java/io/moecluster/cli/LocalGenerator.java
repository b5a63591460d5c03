package io.moecluster.cli;

import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.tokenizer.StreamingDecoder;
import io.moecluster.core.tokenizer.TextTokenizer;
import io.moecluster.router.StopSequenceMatcher;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * One completion in this process ({@code moe generate --model}, {@code moe chat --model}): streams
 * the text as it is decoded and ends at a stop text as the router does (the stop text is not
 * printed, and text that could start one is held back until it cannot).
 */
final class LocalGenerator {
    private final Engine engine;
    private final TextTokenizer tokenizer;

    /** How a completion ended. */
    record Result(String text, int promptTokens, int completionTokens, String finish, double seconds,
                  double timeToFirstTokenMs) {
        String summary() {
            double decodeSeconds = seconds - timeToFirstTokenMs / 1000;
            return String.format(Locale.ROOT, "%d prompt tokens, %d completion tokens (finish: %s) in %.2f s; "
                            + "time to first token %.1f ms; decode %.2f tokens/s", promptTokens, completionTokens, finish,
                    seconds, timeToFirstTokenMs, completionTokens > 1 ? (completionTokens - 1) / decodeSeconds : 0.0);
        }
    }

    LocalGenerator(Engine engine, TextTokenizer tokenizer) {
        this.engine = engine;
        this.tokenizer = tokenizer;
    }

    Result run(int[] prompt, SamplingParams params, List<String> stops, Consumer<String> out) {
        StreamingDecoder decoder = new StreamingDecoder(tokenizer);
        StopSequenceMatcher matcher = new StopSequenceMatcher(stops);
        StringBuilder text = new StringBuilder();
        int[] emitted = {0};
        boolean[] stopped = {false};
        BatchGenerator generator = new BatchGenerator(engine, 1);
        Sequence seq = generator.submit(prompt, params, new TokenSink() {
            @Override
            public void onToken(int token) {
                if (stopped[0]) {
                    return;
                }
                try {
                    text.append(decoder.append(token));
                } catch (IllegalArgumentException e) {
                    // A padding id the tokenizer cannot decode: no text.
                }
                int match = matcher.firstMatch(text, emitted[0]);
                if (match >= 0) {
                    text.setLength(match);
                    stopped[0] = true;
                }
                int end = stopped[0] ? text.length() : matcher.safeLength(text);
                if (end > emitted[0]) {
                    out.accept(text.substring(emitted[0], end));
                    emitted[0] = end;
                }
            }

            @Override
            public void onFinish(FinishReason reason) {
                text.append(decoder.finish());
                int match = matcher.firstMatch(text, emitted[0]);
                if (match >= 0) {
                    text.setLength(match);
                    stopped[0] = true;
                }
                if (text.length() > emitted[0]) {
                    out.accept(text.substring(emitted[0]));
                    emitted[0] = text.length();
                }
            }
        });
        while (!generator.isIdle()) {
            generator.step();
            if (stopped[0] && !seq.isFinished()) {
                generator.cancel(seq);
            }
        }
        String finish = stopped[0] ? "stop" : seq.finishReason().apiName();
        return new Result(text.toString(), prompt.length, seq.generatedCount(), finish, seq.elapsedNanos() / 1e9,
                seq.timeToFirstTokenNanos() / 1e6);
    }
}
