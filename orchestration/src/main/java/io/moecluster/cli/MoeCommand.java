package io.moecluster.cli;

import io.moecluster.core.kernels.VectorWidth;
import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/**
 * The {@code moe} command. Errors end as one line on stderr and a non-zero exit: 2 for a bad
 * command line, 1 for anything that went wrong while running (a bad model directory, say).
 */
@Command(name = "moe",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Serve and inspect Mixture-of-Experts language models.",
        subcommands = {
            ModelCommand.class,
            LogitsCommand.class,
            GenerateCommand.class,
            ChatCommand.class,
            BenchCommand.class,
            BackendsCommand.class,
            DemoCommand.class,
            UpCommand.class,
            DownCommand.class,
            StatusCommand.class,
            ScaleCommand.class,
            DrainCommand.class,
            AutoscaleCommand.class,
            ServeCommand.class,
            SuperviseCommand.class,
            LoadgenCommand.class,
            CommandLine.HelpCommand.class
        })
public final class MoeCommand implements Runnable {
    public static final int EXIT_FAILURE = 1;
    public static final int EXIT_USAGE = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    public static void main(String[] args) {
        System.exit(execute(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line and returns its exit code; the tests call this. */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        try {
            VectorWidth.fromSystemProperty(); // a bad -Dmoe.vectorBits is one line here, not an error from deep in a kernel
        } catch (IllegalArgumentException e) {
            err.println("moe: " + e.getMessage());
            return EXIT_USAGE;
        }
        CommandLine cli = new CommandLine(new MoeCommand());
        cli.setOut(out);
        cli.setErr(err);
        cli.setParameterExceptionHandler((ex, a) -> {
            CommandLine cmd = ex.getCommandLine();
            err.println("moe: " + ex.getMessage() + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
            return EXIT_USAGE;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            if (ex instanceof ModelFormatException || ex instanceof IllegalArgumentException
                    || ex instanceof IllegalStateException
                    || ex instanceof IOException || ex instanceof UncheckedIOException) {
                err.println("moe: " + ex.getMessage());
            } else {
                err.println("moe: " + ex);
                ex.printStackTrace(err);
            }
            return EXIT_FAILURE;
        });
        return cli.execute(args);
    }
}
