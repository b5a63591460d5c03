package io.moecluster.cli;

import io.moecluster.core.engine.DecodeBench;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.kernels.ReadBandwidth;
import io.moecluster.core.model.ModelConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
            "Reports decode tokens/s, ms per step, the bytes of weights one token reads (so the figure can be set "
                    + "against memory bandwidth) and the KV cache one token takes against an uncompressed cache.",
            "With --vs, more models are measured in the same run, side by side: rounds alternate between the "
                    + "models (--rounds), so a noisy machine disturbs them alike; the medians close the report."
        })
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    EngineFlags engine;

    @Option(names = "--vs", paramLabel = "DIR",
            description = "Another model directory to measure in the same run, alternating with --model (repeatable).")
    List<Path> others = new ArrayList<>();

    @Option(names = "--rounds", defaultValue = "1", paramLabel = "N",
            description = "Measured rounds per model and batch size, alternating between the models "
                    + "(default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--batch", split = ",", defaultValue = "1,8", paramLabel = "N[,N...]",
            description = "Batch sizes to measure, in order (default: ${DEFAULT-VALUE}).")
    int[] batches;

    @Option(names = "--prompt-tokens", defaultValue = "32", paramLabel = "N", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--new-tokens", defaultValue = "64", paramLabel = "N", description = "Tokens decoded per sequence (default: ${DEFAULT-VALUE}).")
    int newTokens;

    @Option(names = "--warmup-tokens", defaultValue = "64", paramLabel = "N",
            description = "Tokens of an unmeasured warm-up run per batch size, for the JIT (default: ${DEFAULT-VALUE}).")
    int warmupTokens;

    @Option(names = "--bandwidth-mib", defaultValue = "1024", paramLabel = "MIB",
            description = "Size of the buffer streamed to measure read bandwidth, the decode roofline; 0 skips it "
                    + "(default: ${DEFAULT-VALUE}).")
    int bandwidthMib;

    @Override
    public Integer call() {
        if (rounds < 1) {
            throw new IllegalArgumentException("--rounds must be >= 1, got " + rounds);
        }
        PrintWriter out = spec.commandLine().getOut();
        List<Path> dirs = new ArrayList<>();
        dirs.add(engine.requireModel(spec));
        dirs.addAll(others);
        List<Engine> engines = new ArrayList<>();
        try {
            for (Path dir : dirs) {
                engines.add(Engine.open(dir, engine.options()));
            }
            boolean several = engines.size() > 1;
            for (int m = 0; m < engines.size(); m++) {
                describe(out, several ? label(m) + " " : "", dirs.get(m), engines.get(m));
            }
            Engine first = engines.getFirst();
            out.printf(Locale.ROOT, "compute backend %s (%s)%n", first.backend().name(), first.backend().description());
            if (bandwidthMib > 0) {
                double bandwidth = ReadBandwidth.measure(first.pool(), bandwidthMib * 1048576L, 5);
                out.printf(Locale.ROOT, "read bandwidth (%d MiB buffer, %d threads): %.2f GB/s -> roofline for batch 1: ",
                        bandwidthMib, first.threads(), bandwidth / 1e9);
                for (int m = 0; m < engines.size(); m++) {
                    out.printf(Locale.ROOT, "%s%.1f tokens/s", m == 0 ? "" : ", ",
                            bandwidth / engines.get(m).activeWeightBytesPerToken());
                    if (several) {
                        out.print(" (" + label(m) + ")");
                    }
                }
                out.println();
            }
            out.printf(Locale.ROOT, "%6s %14s %14s %12s %16s%s%n", "batch", "prefill tok/s", "decode tok/s",
                    "ms/step", "weights GB/s*", several || rounds > 1 ? "   model round" : "");
            for (int batch : batches) {
                if (warmupTokens >= 2) {
                    for (Engine e : engines) {
                        DecodeBench.run(e, batch, promptTokens, warmupTokens, 7);
                    }
                }
            }
            double[][][] decode = new double[engines.size()][batches.length][rounds];
            for (int r = 0; r < rounds; r++) {
                for (int b = 0; b < batches.length; b++) {
                    for (int m = 0; m < engines.size(); m++) {
                        Engine e = engines.get(m);
                        DecodeBench.Result res = DecodeBench.run(e, batches[b], promptTokens, newTokens, 42);
                        decode[m][b][r] = res.decodeTokensPerSecond();
                        double gbs = e.activeWeightBytesPerToken() * res.decodeTokensPerSecond() / 1e9;
                        out.printf(Locale.ROOT, "%6d %14.1f %14.2f %12.2f %16.2f%s%n", batches[b],
                                res.prefillTokensPerSecond(), res.decodeTokensPerSecond(), res.millisPerStep(), gbs,
                                several || rounds > 1 ? String.format(Locale.ROOT, "   %5s %5d", label(m), r + 1) : "");
                        out.flush();
                    }
                }
            }
            if (several || rounds > 1) {
                out.printf(Locale.ROOT, "decode tokens/s, median of %d round%s (min-max):%n", rounds, rounds == 1 ? "" : "s");
                for (int m = 0; m < engines.size(); m++) {
                    for (int b = 0; b < batches.length; b++) {
                        double[] v = decode[m][b].clone();
                        Arrays.sort(v);
                        double median = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
                        out.printf(Locale.ROOT, "  %5s batch %3d: %8.2f (%.2f-%.2f)%n", label(m), batches[b], median,
                                v[0], v[v.length - 1]);
                    }
                }
            }
            out.println("* active weight bytes per token x decode tokens/s: the bandwidth a batch of one needs; "
                    + "at larger batches tokens share expert and attention reads, so it overstates the real traffic.");
        } finally {
            for (Engine e : engines) {
                e.close();
            }
        }
        return 0;
    }

    /** "a", "b", ...: how the table names the models of one run. */
    private static String label(int m) {
        return String.valueOf((char) ('a' + m));
    }

    private static void describe(PrintWriter out, String label, Path dir, Engine e) {
        ModelConfig c = e.config();
        out.printf(Locale.ROOT, "model %s%s: %s%n", label, dir, c);
        out.printf(Locale.ROOT, "  attention: %s%n", e.transformer().attention().describe());
        out.printf(Locale.ROOT, "  weights: %s, active weights per token %.1f MiB%n", e.weightFormats(),
                e.activeWeightBytesPerToken() / 1048576.0);
        long kv = e.transformer().kvBytesPerToken();
        long full = e.transformer().uncompressedKvBytesPerToken();
        out.printf(Locale.ROOT, "  KV cache per token: %.1f KiB (%d floats x %d layers) vs %.1f KiB uncompressed "
                        + "(every head's keys and values): %.1fx smaller%n", kv / 1024.0,
                e.transformer().attention().cacheFloatsPerToken(), c.numLayers(), full / 1024.0, (double) full / kv);
    }
}
