package io.moecluster.cli;

import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.TensorInfo;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Prints a model directory's parsed config and its checkpoint: tensors, bytes per dtype, shards.")
final class ModelInfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model directory.")
    Path model;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.load(model);
        try (Checkpoint checkpoint = Checkpoint.open(model)) {
            Map<DType, long[]> byType = new EnumMap<>(DType.class);
            for (String name : checkpoint.tensorNames()) {
                TensorInfo info = checkpoint.info(name);
                long[] acc = byType.computeIfAbsent(info.dtype(), d -> new long[2]);
                acc[0]++;
                acc[1] += info.byteSize();
            }
            out.println(config);
            out.printf(Locale.ROOT, "checkpoint: %s%n", checkpoint.isSharded() ? "sharded (" + Checkpoint.INDEX_FILE + ")"
                    : Checkpoint.SINGLE_FILE);
            byType.forEach((d, acc) -> out.printf(Locale.ROOT, "  %-5s %6d tensors %12.1f MiB%n", d, acc[0],
                    acc[1] / 1048576.0));
        }
        return 0;
    }
}
