package io.moecluster.cli;

import io.moecluster.core.engine.DecodeBench;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.kernels.ReadBandwidth;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {
            "End-to-end decode benchmark in this process: for each batch size, that many sequences of random "
                    + "prompt tokens are prefilled, then decoded greedily (EOS ignored) in lock step.",
            "Reports decode tokens/s, ms per step, and the bytes of weights one token reads, so the figure can "
                    + "be set against memory bandwidth."
        })
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    EngineFlags engine;

    @Option(names = "--batch", split = ",", defaultValue = "1,8", paramLabel = "N[,N...]",
            description = "Batch sizes to measure, in order (default: ${DEFAULT-VALUE}).")
    int[] batches;

    @Option(names = "--prompt-tokens", defaultValue = "32", paramLabel = "N", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--new-tokens", defaultValue = "64", paramLabel = "N", description = "Tokens decoded per sequence (default: ${DEFAULT-VALUE}).")
    int newTokens;

    @Option(names = "--warmup-tokens", defaultValue = "16", paramLabel = "N",
            description = "Tokens of an unmeasured warm-up run per batch size, for the JIT (default: ${DEFAULT-VALUE}).")
    int warmupTokens;

    @Option(names = "--bandwidth-mib", defaultValue = "1024", paramLabel = "MIB",
            description = "Size of the buffer streamed to measure read bandwidth, the decode roofline; 0 skips it "
                    + "(default: ${DEFAULT-VALUE}).")
    int bandwidthMib;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (Engine e = Engine.open(engine.requireModel(spec), engine.options())) {
            long bytes = e.activeWeightBytesPerToken();
            out.printf(Locale.ROOT, "model %s: %s%n", engine.model, e.config());
            out.printf(Locale.ROOT, "compute backend %s (%s), active weights per token %.1f MiB%n",
                    e.backend().name(), e.backend().description(), bytes / 1048576.0);
            double bandwidth = 0;
            if (bandwidthMib > 0) {
                bandwidth = ReadBandwidth.measure(e.pool(), bandwidthMib * 1048576L, 5);
                out.printf(Locale.ROOT, "read bandwidth (%d MiB buffer, %d threads): %.2f GB/s -> roofline for batch 1: "
                                + "%.1f tokens/s%n", bandwidthMib, e.threads(), bandwidth / 1e9, bandwidth / bytes);
            }
            out.printf(Locale.ROOT, "%6s %14s %14s %12s %16s%n", "batch", "prefill tok/s", "decode tok/s",
                    "ms/step", "weights GB/s*");
            for (int batch : batches) {
                if (warmupTokens >= 2) {
                    DecodeBench.run(e, batch, promptTokens, warmupTokens, 7);
                }
                DecodeBench.Result r = DecodeBench.run(e, batch, promptTokens, newTokens, 42);
                double gbs = bytes * r.decodeTokensPerSecond() / 1e9;
                out.printf(Locale.ROOT, "%6d %14.1f %14.2f %12.2f %16.2f%n", batch, r.prefillTokensPerSecond(),
                        r.decodeTokensPerSecond(), r.millisPerStep(), gbs);
            }
            out.println("* active weight bytes per token x decode tokens/s: the bandwidth a batch of one needs; "
                    + "at larger batches tokens share expert and attention reads, so it overstates the real traffic.");
        }
        return 0;
    }
}
