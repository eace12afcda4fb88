package dev.tornadolora.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Help, descriptions and usage errors hold for every command, including ones added later to {@link Main}. */
class CliConventionsTest {

    /** Every command path below the root, e.g. ["eval"], as picocli builds the tree. */
    private static List<List<String>> commands() {
        List<List<String>> paths = new ArrayList<>();
        collect(CliConventions.apply(new CommandLine(new Main())), new ArrayList<>(), paths);
        return paths;
    }

    private static void collect(CommandLine cl, List<String> path, List<List<String>> paths) {
        paths.add(path);
        cl.getSubcommands().forEach((name, sub) -> {
            if (!name.equals(sub.getCommandName())) return;  // an alias: the command is listed under its name
            List<String> p = new ArrayList<>(path);
            p.add(name);
            collect(sub, p, paths);
        });
    }

    @Test
    void helpExitsZeroOnEveryCommandEvenWithRequiredOptions() {
        List<List<String>> paths = commands();
        assertTrue(paths.size() >= 7, "the root and its commands: " + paths);
        for (List<String> path : paths) {
            for (String flag : List.of("--help", "-h")) {
                List<String> args = new ArrayList<>(path);
                args.add(flag);
                CliRun r = CliRun.of(args.toArray(String[]::new));
                assertEquals(0, r.exitCode(), args + ": " + r.err());
                assertTrue(r.out().contains("Usage: tornado-lora" + (path.isEmpty() ? "" : " " + String.join(" ", path))),
                        args + ": " + r.out());
                assertEquals("", r.err(), args.toString());
            }
        }
    }

    @Test
    void everyOptionAndParameterIsDescribed() {
        List<String> undescribed = new ArrayList<>();
        walk(CliConventions.apply(new CommandLine(new Main())), undescribed);
        assertEquals(List.of(), undescribed);
    }

    private static void walk(CommandLine cl, List<String> undescribed) {
        List<ArgSpec> args = new ArrayList<>(cl.getCommandSpec().options());
        args.addAll(cl.getCommandSpec().positionalParameters());
        for (ArgSpec a : args) {
            if (!a.hidden() && String.join("", a.description()).isBlank()) {
                undescribed.add(cl.getCommandSpec().qualifiedName() + " " + a.paramLabel()
                        + (a.isOption() ? " " + String.join("/", ((CommandLine.Model.OptionSpec) a).names()) : ""));
            }
        }
        cl.getSubcommands().values().stream().distinct().forEach(sub -> walk(sub, undescribed));
    }

    @Test
    void aTypoIsAnUnknownOptionWithTheClosestOneEvenWhenRequiredOptionsAreMissing() {
        CliRun r = CliRun.of("eval", "--checkpont", "c.safetensors");
        assertEquals(2, r.exitCode());
        assertEquals("tornado-lora eval: unknown option '--checkpont'; did you mean --checkpoint?\n"
                + "Try 'tornado-lora eval --help' for its options.", r.err().strip().replace("\r", ""));

        r = CliRun.of("train", "--rnak", "3");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("tornado-lora train: unknown option '--rnak'; did you mean --rank?"), r.err());

        r = CliRun.of("merge", "--chekpoint=a", "--output", "b");
        assertTrue(r.err().startsWith("tornado-lora merge: unknown option '--chekpoint'; did you mean --checkpoint?"), r.err());

        r = CliRun.of("train", "--no-quantize");
        assertTrue(r.err().startsWith("tornado-lora train: unknown option '--no-quantize'; did you mean --no-quantize-base?"), r.err());

        r = CliRun.of("quantize", "--zzzzzz", "--input", "a", "--output", "b");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("tornado-lora quantize: unknown option '--zzzzzz'\n"), r.err());
    }

    @Test
    void anUnknownCommandIsNamedWithTheClosestOne() {
        CliRun r = CliRun.of("trian");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("tornado-lora: unknown command 'trian'; did you mean train?"), r.err());
    }

    @Test
    void otherUsageErrorsKeepPicocliMessageAndAHint() {
        CliRun r = CliRun.of("quantize", "--output", "b");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("tornado-lora quantize: Missing required option: '--input=W.safetensors'"), r.err());
        assertTrue(r.err().contains("Try 'tornado-lora quantize --help'"), r.err());
    }

    /** A command that uses -h for an option of its own still gets --help, and help still wins over required options. */
    @CommandLine.Command(name = "hidden")
    static final class UsesDashH implements Runnable {
        @CommandLine.Option(names = "-h", required = true, description = "hidden size")
        int hidden;

        @Override
        public void run() {}
    }

    @Test
    void aCommandWhoseDashHIsTakenStillHasHelp() {
        CommandLine cl = CliConventions.apply(new CommandLine(new UsesDashH()));
        java.io.StringWriter out = new java.io.StringWriter();
        cl.setOut(new java.io.PrintWriter(out, true));
        assertEquals(0, cl.execute("--help"));
        assertTrue(out.toString().contains("--help"), out.toString());
    }

    @Test
    void closestPrefersAUniquePrefixThenASmallEditDistance() {
        List<String> names = List.of("--rank", "--alpha", "--check-finite", "--checkpoint", "--lr");
        assertEquals("--check-finite", CliConventions.closest("--check-f", names));
        assertEquals("--rank", CliConventions.closest("--rnak", names));
        assertEquals("--alpha", CliConventions.closest("--aplha", names));
        assertNull(CliConventions.closest("--seed", names));
        assertEquals(1, CliConventions.editDistance("ab", "ba"));
        assertEquals(3, CliConventions.editDistance("kitten", "sitting"));
    }
}
