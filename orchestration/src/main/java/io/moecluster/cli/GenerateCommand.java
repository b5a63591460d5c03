package io.moecluster.cli;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.core.tokenizer.TextTokenizer;
import java.io.PrintWriter;
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

    @Mixin
    ClientSecurityFlags client;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        SamplingParams params = sampling.params();
        if (server != null) {
            if (engine.model != null) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--model and --server exclude each other");
            }
            return GrpcGenerate.run(server, prompt, sampling, out, err, client.security());
        }
        try (Engine e = Engine.open(engine.requireModel(spec), engine.options());
             TextTokenizer tokenizer = TextTokenizer.load(engine.model, e.config().bosTokenId())) {
            LocalGenerator.Result r = new LocalGenerator(e, tokenizer).run(tokenizer.encode(prompt, true), params,
                    sampling.stop, delta -> {
                        out.print(delta);
                        out.flush();
                    });
            out.println();
            out.flush();
            err.println(r.summary());
        }
        return 0;
    }
}
