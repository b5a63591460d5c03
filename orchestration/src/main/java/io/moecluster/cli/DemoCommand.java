package io.moecluster.cli;

import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "The whole path on a generated model: writes a random-weight model (once) and generates "
                + "text with it in this process. Random weights make random text; the point is the machinery.")
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR", description = "Where the demo model lives (default: models/demo-ARCH-PRESET).")
    Path dir;

    @Option(names = "--arch", defaultValue = "mixtral", converter = Converters.ArchitectureConverter.class,
            paramLabel = "ARCH", description = "mixtral or qwen2_moe (default: ${DEFAULT-VALUE}).")
    Architecture arch;

    @Option(names = "--preset", defaultValue = "bench", converter = Converters.PresetConverter.class,
            paramLabel = "PRESET", description = "bench (RakutenAI-2.0-8x7B scaled down: ~1 GB on disk, a 32000-token "
                    + "vocabulary) or tiny (259 byte tokens, prints raw bytes) (default: ${DEFAULT-VALUE}).")
    Preset preset;

    @Option(names = "--prompt", defaultValue = "The quick brown fox", paramLabel = "TEXT",
            description = "Prompt (default: ${DEFAULT-VALUE}).")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "32", paramLabel = "N", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Path model = dir != null ? dir : Path.of("models", "demo-" + arch.modelType() + "-" + preset.id());
        if (!Files.isRegularFile(model.resolve("config.json"))) {
            out.println("== generating a random " + arch.modelType() + " " + preset.id() + " model in " + model);
            out.flush();
            RandomModelGenerator.generate(arch, preset, DType.BF16, 1, model, false, 0);
        } else {
            out.println("== using the model in " + model);
        }
        out.println("== moe generate --model " + model + " --prompt \"" + prompt + "\" --max-tokens " + maxTokens);
        out.flush();
        CommandLine generate = new CommandLine(new GenerateCommand());
        generate.setOut(out);
        generate.setErr(spec.commandLine().getErr());
        generate.setExecutionExceptionHandler(spec.commandLine().getExecutionExceptionHandler());
        return generate.execute("--model", model.toString(), "--prompt", prompt, "--max-tokens",
                Integer.toString(maxTokens), "--temperature", "0.8", "--seed", "1");
    }
}
