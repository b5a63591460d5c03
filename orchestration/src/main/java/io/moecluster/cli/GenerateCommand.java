package io.moecluster.cli;

import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.engine.TokenSink;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.tokenizer.StreamingDecoder;
import io.moecluster.core.tokenizer.TextTokenizer;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generates a completion and prints it as it is produced, then tokens/s: in this process "
                + "(--model) or from a cluster's gRPC API (--server).")
final class GenerateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    EngineFlags engine;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt text.")
    String prompt;

    @Mixin
    SamplingFlags sampling;

    @Option(names = "--server", paramLabel = "HOST:PORT",
            description = "Ask a cluster's router over gRPC instead of running the model here.")
    String server;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        SamplingParams params = sampling.params();
        if (server != null) {
            if (engine.model != null) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--model and --server exclude each other");
            }
            return GrpcGenerate.run(server, prompt, sampling, out, err);
        }
        try (Engine e = Engine.open(engine.requireModel(spec), engine.options());
             TextTokenizer tokenizer = TextTokenizer.load(engine.model, e.config().bosTokenId())) {
            int[] ids = tokenizer.encode(prompt, true);
            StreamingDecoder decoder = new StreamingDecoder(tokenizer);
            BatchGenerator generator = new BatchGenerator(e, 1);
            Sequence seq = generator.submit(ids, params, new TokenSink() {
                @Override
                public void onToken(int token) {
                    out.print(decoder.append(token));
                    out.flush();
                }

                @Override
                public void onFinish(FinishReason reason) {
                    out.println(decoder.finish());
                    out.flush();
                }
            });
            generator.runToCompletion();
            double seconds = seq.elapsedNanos() / 1e9;
            double ttft = seq.timeToFirstTokenNanos() / 1e6;
            int n = seq.generatedCount();
            double decodeSeconds = (seq.elapsedNanos() - seq.timeToFirstTokenNanos()) / 1e9;
            err.printf(Locale.ROOT, "%d prompt tokens, %d completion tokens (finish: %s) in %.2f s; "
                            + "time to first token %.1f ms; decode %.2f tokens/s%n",
                    ids.length, n, seq.finishReason().name().toLowerCase(Locale.ROOT), seconds, ttft,
                    n > 1 ? (n - 1) / decodeSeconds : 0.0);
        }
        return 0;
    }
}
