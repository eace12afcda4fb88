package dev.tornadolora.cli;

import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Defect classes 1, 2 and 10 of issue 12: an output that is an input, an output that is not a regular file, and
 * I/O errors. Each refusal exits 1 with one line naming the option and the path, and leaves every file the user
 * had byte for byte as it was.
 */
class OutputSafetyTest {
    @TempDir
    Path dir;

    private Path copy(String golden, String name) throws IOException {
        Path p = dir.resolve(name);
        Files.copy(Golden.dir().resolve(golden), p);
        return p;
    }

    /** Every regular file under {@code dir} with its bytes, to compare before and after. */
    private Map<Path, byte[]> snapshot() throws IOException {
        Map<Path, byte[]> m = new LinkedHashMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted().toList()) {
                if (Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) m.put(p, Files.readAllBytes(p));
            }
        }
        return m;
    }

    private void assertUnchanged(Map<Path, byte[]> before) throws IOException {
        Map<Path, byte[]> after = snapshot();
        assertEquals(before.keySet(), after.keySet(), "files added or removed");
        before.forEach((p, b) -> assertArrayEquals(b, after.get(p), p + " changed"));
    }

    /** Runs, expects exit 1 and exactly one line on stderr that is {@code expected}, and nothing changed. */
    private void assertRefused(String expected, String... args) throws IOException {
        Map<Path, byte[]> before = snapshot();
        CliRun r = CliRun.of(args);
        assertEquals(1, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertEquals(expected, r.err().strip());
        assertFalse(r.err().contains("\tat "), "no stack trace");
        assertUnchanged(before);
    }

    // ------------------------------------------------------------ class 1: an output that is an input

    @Test
    void evalOutputThatIsTheCheckpointOrTheInputIsRefused() throws IOException {
        Path c = copy("lora_r4_bias.safetensors", "c.safetensors"), x = copy("lora_r4_bias.safetensors", "x.safetensors");
        assertRefused("tornado-lora eval: error: --output " + c + " is the same file as --checkpoint " + c
                + ": writing it would destroy an input; choose another output",
                "eval", "--checkpoint", c.toString(), "--input", x.toString(), "--output", c.toString());
        assertRefused("tornado-lora eval: error: --output " + x + " is the same file as --input " + x
                + ": writing it would destroy an input; choose another output",
                "eval", "--checkpoint", c.toString(), "--input", x.toString(), "--output", x.toString());
        Path spelled = dir.resolve(".").resolve("sub").resolve("..").resolve("x.safetensors");
        Files.createDirectories(dir.resolve("sub"));
        assertRefused("tornado-lora eval: error: --output " + spelled + " is the same file as --grad-output " + x
                + ": writing it would destroy an input; choose another output",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--grad-output", x.toString(),
                "--output", spelled.toString());
    }

    @Test
    void linksToAnInputAreTheInput() throws IOException {
        Path c = copy("lora_r4_bias.safetensors", "c.safetensors");
        Path sym = Files.createSymbolicLink(dir.resolve("sym.safetensors"), c);
        Path hard = Files.createLink(dir.resolve("hard.safetensors"), c);
        for (Path out : List.of(sym, hard)) {
            assertRefused("tornado-lora eval: error: --output " + out + " is the same file as --checkpoint " + c
                    + ": writing it would destroy an input; choose another output",
                    "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", out.toString());
        }
        assertTrue(Files.isSymbolicLink(sym));
    }

    @Test
    void mergeAndQuantizeOutputsThatAreInputsAreRefused() throws IOException {
        Path m = copy("train/merge_dense_in.safetensors", "m.safetensors");
        assertRefused("tornado-lora merge: error: --output " + m + " is the same file as --checkpoint " + m
                + ": writing it would destroy an input; choose another output",
                "merge", "--checkpoint", m.toString(), "--output", m.toString());
        Path w = copy("lora_r16.safetensors", "w.safetensors");
        assertRefused("tornado-lora quantize: error: --output " + w + " is the same file as --input " + w
                + ": writing it would destroy an input; choose another output",
                "quantize", "--input", w.toString(), "--output", w.toString());
    }

    /** merge --checkpoint RUN --output RUN/base_model.safetensors would make a second merge add the adapter twice. */
    @Test
    void aFileInsideAnInputFolderIsAnInput() throws IOException {
        Path run = Files.createDirectories(dir.resolve("run"));
        Files.copy(Golden.dir().resolve("train/merge_dense_in.safetensors"), run.resolve("base_model.safetensors"));
        Path adapter = run.resolve("adapter.safetensors");
        Files.copy(Golden.dir().resolve("train/merge_dense_in.safetensors"), adapter);
        Path target = run.resolve("base_model.safetensors");
        assertRefused("tornado-lora merge: error: --output " + target + " is the same file as --checkpoint " + run
                + " (its file base_model.safetensors): writing it would destroy an input; choose another output",
                "merge", "--checkpoint", run.toString(), "--output", target.toString());
        assertRefused("tornado-lora merge: error: --output " + adapter + " is the same file as --adapter " + adapter
                + ": writing it would destroy an input; choose another output",
                "merge", "--checkpoint", copy("train/merge_dense_in.safetensors", "b.safetensors").toString(),
                "--adapter", adapter.toString(), "--output", adapter.toString());
    }

    @Test
    void benchOutputsMustBeDistinct() throws IOException {
        Path same = dir.resolve("r.json");
        assertRefused("tornado-lora bench: error: --csv " + same + " is the same file as --json " + same
                + "; give each output its own file", "bench", "--device", "jvm", "--json", same.toString(),
                "--csv", same.toString(), "--png", dir.resolve("r.png").toString());
    }

    // ------------------------------------------------------------ class 2: outputs that are not regular files

    @Test
    void aFifoIsNotReplaced() throws Exception {
        Path fifo = dir.resolve("out.safetensors");
        Process p = new ProcessBuilder("mkfifo", fifo.toString()).start();
        Assumptions.assumeTrue(p.waitFor() == 0, "mkfifo is not available");
        Path c = copy("lora_r4_bias.safetensors", "c.safetensors");
        assertRefused("tornado-lora eval: error: --output " + fifo
                + " is not a regular file (a FIFO, device or socket); refusing to replace it",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", fifo.toString());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "still a FIFO");
        Path m = copy("train/merge_dense_in.safetensors", "m.safetensors");
        assertRefused("tornado-lora merge: error: --output " + fifo
                + " is not a regular file (a FIFO, device or socket); refusing to replace it",
                "merge", "--checkpoint", m.toString(), "--output", fifo.toString());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "still a FIFO");
    }

    @Test
    void devNullAndOtherDevicesAreNotReplaced() throws IOException {
        Path devNull = Path.of("/dev/null");
        Assumptions.assumeTrue(Files.exists(devNull), "no /dev/null");
        Path w = copy("lora_r16.safetensors", "w.safetensors");
        assertRefused("tornado-lora quantize: error: --output /dev/null"
                + " is not a regular file (a FIFO, device or socket); refusing to replace it",
                "quantize", "--input", w.toString(), "--output", "/dev/null");
        assertTrue(Files.exists(devNull) && !Files.isRegularFile(devNull));
        Path linkToNull = Files.createSymbolicLink(dir.resolve("null.safetensors"), devNull);
        assertRefused("tornado-lora quantize: error: --output " + linkToNull
                + " is not a regular file (a FIFO, device or socket); refusing to replace it",
                "quantize", "--input", w.toString(), "--output", linkToNull.toString());
    }

    @Test
    void trainOutputFilesThatAreNotRegularAreRefusedBeforeTraining() throws Exception {
        Path out = Files.createDirectories(dir.resolve("run"));
        Path fifo = out.resolve("log.json");
        Process p = new ProcessBuilder("mkfifo", fifo.toString()).start();
        Assumptions.assumeTrue(p.waitFor() == 0, "mkfifo is not available");
        assertRefused("tornado-lora train: error: --output " + fifo
                + " is not a regular file (a FIFO, device or socket); refusing to replace it",
                "train", "--sizes", "16,16", "--steps", "2", "--batch", "4", "--quiet", "--device", "jvm",
                "--output", out.toString());
    }

    /** An input that is a FIFO would block the reader forever: refused before it is opened. */
    @Test
    void aFifoInputIsRefusedNotWaitedOn() throws Exception {
        Path fifo = dir.resolve("in.safetensors");
        Process p = new ProcessBuilder("mkfifo", fifo.toString()).start();
        Assumptions.assumeTrue(p.waitFor() == 0, "mkfifo is not available");
        org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () ->
                assertRefused("tornado-lora eval: error: " + fifo + ": is not a regular file (a FIFO, device or socket)",
                        "eval", "--checkpoint", fifo.toString(), "--input", fifo.toString(), "--output",
                        dir.resolve("o.safetensors").toString()));
    }

    // ------------------------------------------------------------ class 8: names printed escaped

    @Test
    void mergePrintsHostileModuleNamesEscaped() throws IOException {
        dev.tornadolora.io.SafeTensorsWriter w = new dev.tornadolora.io.SafeTensorsWriter().metadata("alpha", "2")
                .f32("m\u001b[2J\r.weight", dev.tornadolora.tensor.Tensor.of(new float[8], 2, 4))
                .f32("m\u001b[2J\r.lora_a.weight", dev.tornadolora.tensor.Tensor.of(new float[4], 1, 4))
                .f32("m\u001b[2J\r.lora_b.weight", dev.tornadolora.tensor.Tensor.of(new float[2], 2, 1));
        Path c = dir.resolve("c.safetensors"), out = dir.resolve("m.safetensors");
        w.write(c);
        CliRun r = CliRun.of("merge", "--checkpoint", c.toString(), "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals("wrote " + out + ": merged 1 module(s) [m\\u001b[2J\\u000d]", r.out().strip());
        assertFalse((r.out() + r.err()).chars().anyMatch(ch -> ch == 0x1b || ch == '\r'));
    }

    // ------------------------------------------------------------ class 10: empty, folder and unwritable targets

    @Test
    void emptyAndFolderTargetsAreRefused() throws IOException {
        Path c = copy("lora_r4_bias.safetensors", "c.safetensors");
        assertRefused("tornado-lora eval: error: --output: empty path",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", "");
        Path sub = Files.createDirectories(dir.resolve("sub"));
        assertRefused("tornado-lora eval: error: --output " + sub + " is a folder; give the path of a file",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", sub.toString());
        String slash = dir.resolve("new") + "/";
        assertRefused("tornado-lora eval: error: --output " + slash + ". is a folder; give the path of a file",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", slash);
        assertFalse(Files.exists(dir.resolve("new")), "no file named after the folder");
        assertRefused("tornado-lora eval: error: --output " + c.resolve("o.safetensors") + ": " + c + " is not a folder",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output",
                c.resolve("o.safetensors").toString());
        assertRefused("tornado-lora eval: error: --output " + c.resolve("a/o.safetensors") + ": " + c + " is not a folder",
                "eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output",
                c.resolve("a/o.safetensors").toString());
        assertRefused("tornado-lora train: error: --output " + c + " exists and is not a folder",
                "train", "--sizes", "16,16", "--steps", "2", "--quiet", "--output", c.toString());
    }

    /** An unwritable folder: the message names the target and why, not the hidden temporary. */
    @Test
    void anUnwritableTargetIsNamed() throws IOException {
        Path c = copy("lora_r4_bias.safetensors", "c.safetensors");
        Path ro = Files.createDirectories(dir.resolve("ro"));
        Path target;
        if (ro.toFile().setWritable(false, false) && !Files.isWritable(ro)) {
            target = ro.resolve("o.safetensors");
        } else {  // root writes anywhere its permissions say; /proc takes no new files from anyone
            Assumptions.assumeTrue(Files.isDirectory(Path.of("/proc/self")), "no read-only folder to write into");
            target = Path.of("/proc/tornado-lora-test.safetensors");
        }
        CliRun r = CliRun.of("eval", "--checkpoint", c.toString(), "--input", c.toString(), "--output", target.toString());
        ro.toFile().setWritable(true, false);
        assertEquals(1, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("tornado-lora eval: error: cannot write " + target + ": "), r.err());
        assertFalse(r.err().contains(".tmp-"), "names the target, not the temporary: " + r.err());
    }

    @Test
    void usageErrorsExit2WithoutAStackTrace() {
        List<List<String>> cases = new ArrayList<>(List.of(List.of("eval", "--checkpoint"),
                List.of("train", "--steps", "abc"), List.of("quantize", "--no-such-option")));
        for (List<String> args : cases) {
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(2, r.exitCode(), args + ": " + r.err());
            assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), args + ": " + r.err());
        }
    }
}
