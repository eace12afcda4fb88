package dev.tornadolora.cli;

import dev.tornadolora.finetune.StepExecutor;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;

/**
 * One replica of a data-parallel {@code finetune}: the same model, data and options as the single-process
 * command, with its steps computed by {@code executor}. The writer (rank 0) evaluates and writes every output
 * exactly as {@code finetune} without {@code --spark} does; the others only train.
 */
public final class FinetuneReplica {
    private FinetuneReplica() {}

    /** The options that name files or folders. */
    private static final java.util.Set<String> PATHS = java.util.Set.of("--model", "--data", "--output", "--eval-data",
            "--init-adapter");

    /**
     * {@code args} with every path option made absolute against this process's working directory, so that
     * executors (whose working directories differ) find the same files.
     */
    public static String[] absolutePaths(String[] args) {
        String[] out = args.clone();
        for (int i = 0; i < out.length; i++) {
            int eq = out[i].indexOf('=');
            String name = eq < 0 ? out[i] : out[i].substring(0, eq);
            if (!PATHS.contains(name)) continue;
            if (eq >= 0) {
                out[i] = name + "=" + absolute(out[i].substring(eq + 1));
            } else if (i + 1 < out.length) {
                out[i + 1] = absolute(out[i + 1]);
                i++;
            }
        }
        return out;
    }

    private static String absolute(String path) {
        return java.nio.file.Path.of(path).toAbsolutePath().normalize().toString();
    }

    /**
     * Checks on the driver what would make every replica (and every retry) fail the same way: the arguments parse,
     * and --model's config.json and --data exist here (the executors must see the same paths).
     */
    public static void validate(String[] args) {
        FinetuneCommand cmd = new FinetuneCommand();
        new CommandLine(cmd).parseArgs(args);
        if (cmd.model == null || cmd.data == null) {
            throw new IllegalArgumentException("a data-parallel finetune needs --model DIR and --data FILE");
        }
        if (!java.nio.file.Files.isRegularFile(cmd.model.resolve("config.json"))) {
            throw new IllegalArgumentException(cmd.model.resolve("config.json") + ": no such file");
        }
        if (!java.nio.file.Files.isRegularFile(cmd.data)) throw new IllegalArgumentException(cmd.data + ": no such file");
    }

    /**
     * @param args   the {@code finetune} arguments ({@code --spark} and {@code --workers} are ignored here)
     * @param resume continue from the resume point in --output when there is one (a retried task passes true)
     */
    public static void run(String[] args, StepExecutor executor, boolean writer, boolean resume, PrintWriter out)
            throws IOException {
        FinetuneCommand cmd = new FinetuneCommand();
        CommandLine cl = new CommandLine(cmd);
        cl.setOut(out);
        cl.parseArgs(args);
        cmd.resume |= resume;
        cmd.train(out, executor, writer);
    }
}
