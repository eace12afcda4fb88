package dev.tornadolora.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code tornado-lora}: the command-line entry point. */
@Command(name = "tornado-lora", mixinStandardHelpOptions = true, version = "tornado-lora 0.1.0",
        description = "LoRA / QLoRA layers on the JVM (torchtune semantics), with JVM and TornadoVM backends.",
        subcommands = {FinetuneCommand.class, EvalCommand.class, QuantizeCommand.class, TrainCommand.class,
                MergeCommand.class, DevicesCommand.class, BenchCommand.class, ForwardCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code: 0 on success, 1 on a failed command, 2 on a usage error. */
    public static int run(String... args) {
        return run(new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
    }

    /** As {@link #run(String...)}, printing to the given writers (tests read them). */
    public static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String name = commandLine.getCommandName();
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            if (!(e instanceof IllegalArgumentException || e instanceof java.io.IOException
                    || e instanceof IllegalStateException || e instanceof UnsupportedOperationException
                    || e instanceof ArithmeticException)) {
                msg = e.getClass().getSimpleName() + ": " + msg;
            }
            commandLine.getErr().println("tornado-lora " + name + ": error: " + msg.replace('\n', ' '));
            if (Boolean.getBoolean("tornadolora.stacktrace")) {
                e.printStackTrace(commandLine.getErr());
            }
            return 1;
        });
        return cl.execute(args);
    }
}
