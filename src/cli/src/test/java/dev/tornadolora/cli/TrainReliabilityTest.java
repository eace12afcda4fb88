package dev.tornadolora.cli;

import dev.tornadolora.io.FolderLock;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Defect classes 3 to 6 of issue 12 for {@code train}: a resume point is checked (run identity, options, the
 * numbers it holds), two processes cannot share an output folder, degenerate options are refused, a job too
 * large for the heap stops before it starts with one line, and two identical runs write identical files.
 */
class TrainReliabilityTest {
    static final List<String> OPTIONS = List.of("train", "--sizes", "16,16,16", "--rank", "2", "--alpha", "4",
            "--steps", "6", "--batch", "4", "--eval-batch", "8", "--block-size", "16", "--scaler-block-size", "4",
            "--save-every", "2", "--dropout", "0.1", "--seed", "0", "--device", "jvm", "--quiet");

    @TempDir
    Path dir;

    private static String[] args(List<String> base, String... more) {
        List<String> all = new ArrayList<>(base);
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    private static List<String> with(List<String> base, String option, String value) {
        List<String> l = new ArrayList<>(base);
        int i = l.indexOf(option);
        if (i < 0) {
            l.add(option);
            l.add(value);
        } else {
            l.set(i + 1, value);
        }
        return l;
    }

    private static Path train(List<String> options, Path out) {
        CliRun r = CliRun.of(args(options, "--output", out.toString()));
        assertEquals(0, r.exitCode(), r.err());
        return out;
    }

    private static Map<Path, byte[]> snapshot(Path root) throws IOException {
        Map<Path, byte[]> m = new LinkedHashMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted().toList()) if (Files.isRegularFile(p)) m.put(root.relativize(p), Files.readAllBytes(p));
        }
        return m;
    }

    /** --resume with these options exits 1 with one line starting with {@code expected}; the folder is unchanged. */
    private static void assertResumeRefused(List<String> options, Path out, String expected) throws IOException {
        Map<Path, byte[]> before = snapshot(out);
        CliRun r = CliRun.of(args(options, "--output", out.toString(), "--resume"));
        assertEquals(1, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("tornado-lora train: error: " + expected), r.err());
        Map<Path, byte[]> after = snapshot(out);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((p, b) -> assertArrayEquals(b, after.get(p), p + " changed"));
    }

    /** A copy of a safetensors file with some metadata values replaced. */
    private static void editMetadata(Path file, Map<String, String> changes) throws IOException {
        SafeTensors st = SafeTensors.open(file);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (String n : st.names()) w.copy(st, n);
        Map<String, String> m = new LinkedHashMap<>(st.metadata());
        m.putAll(changes);
        byte[] bytes = w.metadata(m).toBytes();
        Files.write(file, bytes);
    }

    @Test
    void everyFileOfARunCarriesItsIdentity() throws IOException {
        Path out = train(OPTIONS, dir.resolve("a"));
        String id = SafeTensors.open(out.resolve("training_state.safetensors")).requireMetadata("run_id");
        assertTrue(id.matches("run-[0-9a-f]{16}"), id);
        for (String f : List.of("adapter.safetensors", "peft/adapter_model.safetensors", "base_model.safetensors",
                "sample.safetensors")) {
            assertEquals(id, SafeTensors.open(out.resolve(f)).requireMetadata("run_id"), f);
        }
        assertTrue(Files.readString(out.resolve("log.json")).contains("\"run_id\" : \"" + id + "\""));
    }

    @Test
    void aStateOfAnotherRunIsRefusedNamingTheOption() throws IOException {
        Path a = train(OPTIONS, dir.resolve("a")), b = train(with(OPTIONS, "--seed", "1"), dir.resolve("b"));
        Files.copy(b.resolve("training_state.safetensors"), a.resolve("training_state.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertResumeRefused(OPTIONS, a, "--resume: " + a + " was trained with other options: seed 1 -> 0");
        // With the other run's options the state passes, but the folder's log is of this run.
        assertResumeRefused(with(OPTIONS, "--seed", "1"), a, "--resume: " + a + " holds files of different runs: "
                + a.resolve("log.json") + " belongs to run");
    }

    @Test
    void optionsThatChangeTheMathAreCompared() throws IOException {
        List<String> sgd = with(with(OPTIONS, "--optimizer", "sgd"), "--momentum", "0.9");
        Path out = train(sgd, dir.resolve("sgd"));
        assertResumeRefused(with(sgd, "--momentum", "0.5"), out,
                "--resume: " + out + " was trained with other options: momentum 0.9 -> 0.5");
        assertResumeRefused(with(sgd, "--eval-batch", "16"), out,
                "--resume: " + out + " was trained with other options: eval_batch 8 -> 16");
        assertResumeRefused(with(sgd, "--optimizer", "adamw"), out,
                "--resume: " + out + " was trained with other options: optimizer \"sgd\" -> \"adamw\"");
        assertResumeRefused(with(sgd, "--max-grad-norm", "0.5"), out,
                "--resume: " + out + " was trained with other options: max_grad_norm 1.0 -> 0.5");
    }

    @Test
    void numbersInAStateAreChecked() throws IOException {
        Path out = train(OPTIONS, dir.resolve("a"));
        Path state = out.resolve("training_state.safetensors");
        byte[] original = Files.readAllBytes(state);
        editMetadata(state, Map.of("base_lr", "0.5"));
        assertResumeRefused(OPTIONS, out, "--resume: " + state + ": base_lr '0.5' is not the run's --lr 0.01");
        Files.write(state, original);
        editMetadata(state, Map.of("options", "{\"seed\":0}"));
        assertResumeRefused(OPTIONS, out, state + ": its run identity does not match its options");
        Files.write(state, original);
        editMetadata(state, Map.of("options_sha256", "0".repeat(64)));
        assertResumeRefused(OPTIONS, out, state + ": its run identity does not match its options");
    }

    /** A hostile dropout position is refused at once, not stepped to (it took 11 s per 10^10 draws). */
    @Test
    void aHugeDropoutPositionIsRefusedAtOnce() throws IOException {
        Path out = train(OPTIONS, dir.resolve("a"));
        Path state = out.resolve("training_state.safetensors");
        editMetadata(state, Map.of("fc1.dropout_draws", Long.toString(Long.MAX_VALUE)));
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertResumeRefused(OPTIONS, out,
                "--resume: " + state + ": fc1.dropout_draws is 9223372036854775807 but the run can have drawn 384"
                        + " (step 6 x --batch 4 x width 16)"));
    }

    @Test
    void aFolderInUseIsRefused() throws IOException {
        Path out = Files.createDirectories(dir.resolve("busy"));
        try (FolderLock held = FolderLock.acquire(out, "--output")) {
            assertNotNull(held);
            CliRun r = CliRun.of(args(OPTIONS, "--output", out.toString()));
            assertEquals(1, r.exitCode(), r.err());
            assertEquals("tornado-lora train: error: --output " + out + " is in use by another tornado-lora process"
                    + " (it holds .tornado-lora.lock); wait for it or choose another folder", r.err().strip());
        }
        train(OPTIONS, out);  // released
    }

    /** Another process holds the folder: the OS lock, not just this JVM's bookkeeping. */
    @Test
    void aFolderInUseByAnotherProcessIsRefused() throws Exception {
        Path out = dir.resolve("busy");
        List<String> slow = with(with(OPTIONS, "--steps", "100000"), "--save-every", "1");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        command.addAll(slow);
        command.addAll(List.of("--output", out.toString()));
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("busy.out").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!Files.exists(out.resolve("training_state.safetensors")) && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(p.isAlive(), Files.readString(dir.resolve("busy.out")));
            CliRun r = CliRun.of(args(OPTIONS, "--output", out.toString(), "--resume"));
            assertEquals(1, r.exitCode(), r.err());
            assertTrue(r.err().contains("is in use by another tornado-lora process"), r.err());
        } finally {
            p.destroyForcibly();
            p.waitFor(60, TimeUnit.SECONDS);
        }
    }

    @Test
    void degenerateClippingIsRefused() {
        for (String v : List.of("-1", "NaN", "Infinity")) {
            CliRun r = CliRun.of(args(OPTIONS, "--max-grad-norm", v, "--output", dir.resolve("x").toString()));
            assertEquals(1, r.exitCode(), r.err());
            assertEquals("tornado-lora train: error: --max-grad-norm must be a finite number >= 0 (0: no clipping), got "
                    + Double.parseDouble(v), r.err().strip());
        }
        assertFalse(Files.exists(dir.resolve("x")), "nothing written");
    }

    @Test
    void jobsTooLargeForTheHeapStopBeforeStartingWithOneLine() {
        List<String[]> cases = List.of(
                args(List.of("train", "--batch", "25000000", "--quiet", "--device", "jvm")),
                args(List.of("train", "--sizes", "40000,40000", "--no-quantize-base", "--quiet", "--device", "jvm")),
                args(List.of("bench", "--device", "jvm", "--dims", "40000", "--bases", "fp32", "--tokens", "1",
                        "--ops", "forward")));
        for (String[] a : cases) {
            List<String> withOutput = new ArrayList<>(List.of(a));
            withOutput.addAll(a[0].equals("train") ? List.of("--output", dir.resolve("big").toString())
                    : List.of("--json", dir.resolve("b.json").toString(), "--csv", dir.resolve("b.csv").toString(),
                    "--png", dir.resolve("b.png").toString()));
            CliRun r = CliRun.of(withOutput.toArray(String[]::new));
            assertEquals(1, r.exitCode(), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().matches("(?s)tornado-lora (train|bench): error: .* needs [0-9.]+ [KMGT]iB of heap but .*"
                    + "TORNADO_LORA_JAVA_OPTS=-Xmx[0-9]+g.*"), r.err());
        }
        assertFalse(Files.exists(dir.resolve("big").resolve("log.json")));
    }

    /** eval's output size comes from shapes (tokens x out), not from a file's bytes: checked before the forward. */
    @Test
    void evalOutputsLargerThanTheHeapAreRefusedWithOneLine() throws IOException {
        int out = 1 << 16, tokens = 1 << 20;
        Path c = dir.resolve("c.safetensors"), x = dir.resolve("x.safetensors");
        new SafeTensorsWriter().metadata("alpha", "1").f32("weight", new int[] {out, 1}, new float[out])
                .f32("lora_a.weight", new int[] {1, 1}, new float[1])
                .f32("lora_b.weight", new int[] {out, 1}, new float[out]).write(c);
        new SafeTensorsWriter().f32("x", new int[] {tokens, 1}, new float[tokens]).write(x);
        CliRun r = CliRun.of("eval", "--checkpoint", c.toString(), "--input", x.toString(), "--output",
                dir.resolve("o.safetensors").toString());
        assertEquals(1, r.exitCode(), r.err());
        assertTrue(r.err().matches("tornado-lora eval: error: eval of 1048576 tokens through \\[65536, 1\\] needs .* of heap but .*TORNADO_LORA_JAVA_OPTS=-Xmx.*\n"),
                r.err());
        assertFalse(Files.exists(dir.resolve("o.safetensors")));
    }

    @Test
    void twoIdenticalRunsWriteIdenticalFiles() throws IOException {
        Path a = train(OPTIONS, dir.resolve("a")), b = train(OPTIONS, dir.resolve("b"));
        for (String f : List.of("adapter.safetensors", "peft/adapter_model.safetensors", "peft/adapter_config.json",
                "base_model.safetensors", "training_state.safetensors", "sample.safetensors", "loss.png")) {
            assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
        }
    }
}
