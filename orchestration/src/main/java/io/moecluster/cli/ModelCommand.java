package io.moecluster.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

@Command(name = "model", mixinStandardHelpOptions = true,
        description = "Model files: generate random-weight models, inspect a model directory, quantize one to int8.",
        subcommands = {MakeRandomCommand.class, ModelInfoCommand.class, QuantizeCommand.class})
final class ModelCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing subcommand (make-random, info or quantize)");
    }
}
