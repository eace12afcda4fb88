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
