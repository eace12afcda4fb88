package dev.tornadolora.cli;

import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.io.IoErrors;
import dev.tornadolora.io.SafeText;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code tornado-lora}: the command-line entry point. */
@Command(name = "tornado-lora", mixinStandardHelpOptions = true, version = "tornado-lora 0.1.0",
        description = "LoRA / QLoRA layers on the JVM (torchtune semantics), with JVM and TornadoVM backends.",
        subcommands = {FinetuneCommand.class, DataCommand.class, EvalCommand.class, QuantizeCommand.class, TrainCommand.class,
                MergeCommand.class, DevicesCommand.class, BenchCommand.class, ForwardCommand.class, GenerateCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        java.io.PrintStream stdout = RuntimeNotices.install();  // the runtime's notices go to stderr
        System.exit(run(new java.io.PrintWriter(stdout, true), new java.io.PrintWriter(System.err, true), args));
    }

    /** Runs the CLI and returns its exit code: 0 on success, 1 on a failed command, 2 on a usage error. */
    public static int run(String... args) {
        return run(new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
    }

    /** As {@link #run(String...)}, printing to the given writers (tests read them). */
    public static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        CommandLine cl = CliConventions.apply(new CommandLine(new Main()));
        cl.setOut(out);
        cl.setErr(err);
        cl.registerConverter(java.nio.file.Path.class, Main::path);
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String name = commandLine.getCommandName();
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            if (e instanceof java.nio.file.FileSystemException fse && fse.getMessage() != null
                    && fse.getMessage().equals(fse.getFile())) {
                msg = IoErrors.line(fse);  // the JDK's message is the bare path
            }
            if (!(e instanceof IllegalArgumentException || e instanceof java.io.IOException
                    || e instanceof IllegalStateException || e instanceof UnsupportedOperationException
                    || e instanceof ArithmeticException)) {
                msg = e.getClass().getSimpleName() + ": " + msg;
            }
            commandLine.getErr().println("tornado-lora " + name + ": error: "
                    + SafeText.of(msg.replace('\n', ' '), 2000));
            if (Boolean.getBoolean("tornadolora.stacktrace")) {
                e.printStackTrace(commandLine.getErr());
            }
            return 1;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {  // thrown past picocli's handler (an Error, not an Exception)
            err.println("tornado-lora: error: " + HeapCheck.message(e));
            err.flush();
            return 1;
        }
    }

    /**
     * Paths as given, except that a trailing separator is kept as a final {@code .} ({@code dir/} becomes
     * {@code dir/.}): {@link java.nio.file.Path} drops it, and a file output named {@code dir/} must be refused
     * as a folder rather than written as the file {@code dir}.
     */
    static java.nio.file.Path path(String s) {
        java.nio.file.Path p;
        try {
            p = java.nio.file.Path.of(s);
        } catch (java.nio.file.InvalidPathException e) {
            throw new CommandLine.TypeConversionException("not a valid path: " + SafeText.quote(s) + " ("
                    + SafeText.of(e.getReason()) + ")");
        }
        return s.length() > 1 && (s.endsWith("/") || s.endsWith(java.io.File.separator)) ? p.resolve(".") : p;
    }
}
