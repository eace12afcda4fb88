package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train} killed with SIGKILL mid-run and started again with {@code --resume} ends with exactly (bit for
 * bit) the adapters, optimizer state and loss history of a run that was never stopped. With dropout, so that the
 * masks must resume where they stood too.
 */
class TrainResumeTest {
    static final int STEPS = 200;
    static final List<String> OPTIONS = List.of("train", "--sizes", "64,64,64", "--rank", "4", "--alpha", "8",
            "--steps", Integer.toString(STEPS), "--batch", "16", "--lr", "0.02", "--block-size", "32",
            "--scaler-block-size", "8", "--dropout", "0.1", "--save-every", "10", "--seed", "5", "--device", "jvm",
            "--quiet");

    @TempDir
    Path dir;

    private static Process train(Path output, String... more) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        command.addAll(OPTIONS);
        command.addAll(List.of("--output", output.toString()));
        command.addAll(List.of(more));
        return new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(output.resolveSibling(output.getFileName() + ".out").toFile()).start();
    }

    private static void finish(Process p, Path output) throws Exception {
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "train did not finish");
        assertEquals(0, p.exitValue(), Files.readString(output.resolveSibling(output.getFileName() + ".out")));
    }

    /** The step of the resume point in {@code output}, or 0 while there is none. */
    private static long savedStep(Path output) {
        Path state = output.resolve("training_state.safetensors");
        if (!Files.exists(state)) return 0;
        return Long.parseLong(SafeTensors.open(state).requireMetadata("step"));
    }

    @Test
    void aKilledRunResumedEndsAsAnUninterruptedOne() throws Exception {
        Path straight = dir.resolve("straight"), killed = dir.resolve("killed");
        Process uninterrupted = train(straight);

        Process victim = train(killed);
        while (savedStep(killed) < 30 && victim.isAlive()) {
            Thread.sleep(2);
        }
        victim.destroyForcibly();
        assertTrue(victim.waitFor(60, TimeUnit.SECONDS));
        assertNotEquals(0, victim.exitValue(), "killed, not finished");
        long stoppedAt = savedStep(killed);
        assertTrue(stoppedAt >= 30 && stoppedAt < STEPS, "killed at step " + stoppedAt);
        System.out.println("train killed (SIGKILL) after its checkpoint of step " + stoppedAt + " of " + STEPS);

        finish(uninterrupted, straight);
        Process resumed = train(killed, "--resume");
        finish(resumed, killed);
        assertTrue(Files.readString(dir.resolve("killed.out")).contains("resuming " + killed + " at step "));

        for (String file : List.of("adapter.safetensors", "peft/adapter_model.safetensors", "training_state.safetensors")) {
            SafeTensors a = SafeTensors.open(straight.resolve(file)), b = SafeTensors.open(killed.resolve(file));
            assertEquals(a.names(), b.names(), file);
            for (String name : a.names()) {
                assertArrayEquals(a.bytes(name, a.entry(name).dtype()), b.bytes(name, b.entry(name).dtype()), file + ": " + name);
            }
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode logA = json.readTree(straight.resolve("log.json").toFile()), logB = json.readTree(killed.resolve("log.json").toFile());
        assertEquals(STEPS, logB.get("steps").size());
        for (int i = 0; i < STEPS; i++) {
            for (String field : List.of("step", "loss", "lr", "grad_norm", "tokens")) {
                assertEquals(logA.get("steps").get(i).get(field), logB.get("steps").get(i).get(field), "step " + (i + 1) + " " + field);
            }
        }
        assertEquals(logA.get("summary").get("final_eval_loss"), logB.get("summary").get("final_eval_loss"));
        assertEquals(stoppedAt, logB.get("summary").get("resumed_at_step").asLong());
        try (Stream<Path> files = Files.walk(killed)) {
            assertEquals(List.of(), files.filter(AtomicFiles::isTemporary).toList(), "the killed run's temporaries are gone");
        }
    }

    @Test
    void resumingNeedsAResumePointAndTheSameOptions() throws Exception {
        Path out = dir.resolve("none");
        CliRun r = CliRun.of(concat(OPTIONS, "--output", out.toString(), "--resume"));
        assertEquals(1, r.exitCode());
        assertEquals("tornado-lora train: error: --resume: " + out.resolve("training_state.safetensors")
                + " does not exist (nothing to resume; a run writes it at each --save-every and at the end)\n", r.err());

        List<String> shortRun = new ArrayList<>(OPTIONS);
        shortRun.set(shortRun.indexOf("--steps") + 1, "20");
        assertEquals(0, CliRun.of(concat(shortRun, "--output", out.toString())).exitCode());
        List<String> other = new ArrayList<>(shortRun);
        other.set(other.indexOf("--rank") + 1, "2");
        other.set(other.indexOf("--lr") + 1, "0.1");
        r = CliRun.of(concat(other, "--output", out.toString(), "--resume"));
        assertEquals(1, r.exitCode());
        assertEquals("tornado-lora train: error: --resume: " + out + " was trained with other options: rank 4 -> 2,"
                + " hidden_rank 4 -> 2, lr 0.02 -> 0.1 (give the options of the run being resumed)\n", r.err());
    }

    private static String[] concat(List<String> options, String... more) {
        List<String> all = new ArrayList<>(options);
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }
}
