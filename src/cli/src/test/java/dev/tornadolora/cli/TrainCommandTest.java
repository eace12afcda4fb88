package dev.tornadolora.cli;

import dev.tornadolora.testing.TestDevices;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.ModelCheckpoint;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.Oracle;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The train command end to end on a small QLoRA task (about a second): it must learn (the command's own
 * criteria), and what it writes must load back in Java, merge, and load in PyTorch (scripts/check_peft.py).
 */
class TrainCommandTest {
    static final int STEPS = 300;

    @TempDir
    static Path out;
    static CliRun run;

    @BeforeAll
    static void train() {
        run = CliRun.of("train", "--sizes", "64,64,64", "--rank", "4", "--alpha", "8", "--steps", String.valueOf(STEPS),
                "--batch", "32", "--lr", "0.02", "--block-size", "32", "--scaler-block-size", "8", "--save-every", "100",
                "--quiet", "--output", out.toString());
    }

    @Test
    void learnsTheHiddenUpdate() throws IOException {
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("learning criteria met"), run.out());
        JsonNode log = new ObjectMapper().readTree(out.resolve("log.json").toFile());
        JsonNode s = log.get("summary");
        assertTrue(s.get("criteria_met").asBoolean());
        assertTrue(s.get("loss_ratio").asDouble() <= 0.01, "loss ratio " + s.get("loss_ratio"));
        for (String layer : List.of("fc1", "fc2")) {
            assertTrue(s.get("cosine").get(layer).asDouble() >= 0.99, layer + " cosine " + s.get("cosine"));
        }
        assertEquals(STEPS, log.get("steps").size());
        JsonNode first = log.get("steps").get(0);
        for (String field : List.of("step", "loss", "lr", "grad_norm", "tokens", "elapsed_s")) {
            assertTrue(first.has(field), "step entry lacks " + field);
        }
        assertEquals(0.0, first.get("lr").asDouble(), "warm-up starts at 0 as torchtune's schedule");
        assertEquals(true, log.get("config").get("quantize_base").asBoolean());
    }

    @Test
    void writesEveryArtefactAtomically() throws IOException {
        for (String f : List.of("adapter.safetensors", "peft/adapter_model.safetensors", "peft/adapter_config.json",
                "base_model.safetensors", "training_state.safetensors", "sample.safetensors", "log.json", "loss.png")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
        byte[] png = Files.readAllBytes(out.resolve("loss.png"));
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(png, 4));
        try (Stream<Path> files = Files.walk(out)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "temporary files left");
        }
        SafeTensors state = SafeTensors.open(out.resolve("training_state.safetensors"));
        assertEquals(String.valueOf(STEPS), state.metadata().get("step"));
        assertTrue(state.contains("fc1.lora_a.weight.exp_avg"));
        assertTrue(SafeTensors.open(out.resolve("base_model.safetensors")).contains("fc2.weight.quantized_data"));
    }

    /** Base + PEFT adapters read back in Java reproduce the outputs the trained model wrote. */
    @Test
    void checkpointLoadsBackInJava() {
        SafeTensors sample = SafeTensors.open(out.resolve("sample.safetensors"));
        // train ran on --device auto (here the JVM backend): the same backend gives the same bits
        Sequential peft = ModelCheckpoint.load(out.resolve("base_model.safetensors")).to(TestDevices.jvm());
        AdapterCheckpoints.loadPeft(out.resolve("peft"), peft.loraModules());
        assertArrayEquals(sample.f32("y").data(), peft.eval().forward(sample.f32("x")).data());
        Sequential tt = ModelCheckpoint.load(out.resolve("base_model.safetensors")).to(TestDevices.jvm());
        AdapterCheckpoints.loadTorchtune(out.resolve("adapter.safetensors"), tt.loraModules());
        assertArrayEquals(sample.f32("y").data(), tt.eval().forward(sample.f32("x")).data());
    }

    /** merge on the output folder: the merged fp32 weights alone give the trained model's outputs. */
    @Test
    void mergedCheckpointReproducesTheOutputs() {
        Path merged = out.resolve("merged.safetensors");
        CliRun m = CliRun.of("merge", "--checkpoint", out.toString(), "--output", merged.toString(), "--safe");
        assertEquals(0, m.exitCode(), m.err());
        assertEquals("wrote " + merged + ": merged 2 module(s) [fc1, fc2]", m.out().strip());
        SafeTensors st = SafeTensors.open(merged);
        assertTrue(st.names().stream().noneMatch(k -> k.contains("lora") || k.contains("quantized")), st.names().toString());
        Sequential model = ModelCheckpoint.load(merged).eval();  // fresh adapters: B = 0, the update is in W
        SafeTensors sample = SafeTensors.open(out.resolve("sample.safetensors"));
        Golden.assertClose(sample.f32("y").data(), model.forward(sample.f32("x")).data(), 1e-5, "merged y");

        CliRun q = CliRun.of("merge", "--checkpoint", out.toString(), "--output", out.resolve("q.safetensors").toString(),
                "--requantize");
        assertEquals(0, q.exitCode(), q.err());
        assertTrue(q.err().contains("warning: re-quantizing the merged weights to NF4 rounds them again"), q.err());
        assertTrue(SafeTensors.open(out.resolve("q.safetensors")).contains("fc1.weight.quantized_data"));
    }

    /**
     * scripts/check_peft.py reads the PEFT folder with plain torch and must reproduce Java's outputs to 1e-5. The
     * interpreter: $ORACLE_PYTHON, else the oracle environment (scripts/oracle-venv.sh), else /usr/bin/python3.
     */
    @Test
    void peftCheckpointLoadsInPyTorch() throws Exception {
        Path root = Oracle.root("scripts/check_peft.py");
        Path python = Oracle.python(root);
        if (!Files.isExecutable(python)) python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isExecutable(python) && exitCode(python.toString(), "-c", "import torch") == 0,
                "SKIPPED: no Python with torch (scripts/oracle-venv.sh creates one from the wheels on disk), so the"
                        + " PyTorch side of the PEFT interop check cannot run");
        ProcessBuilder pb = new ProcessBuilder(python.toString(), root.resolve("scripts/check_peft.py").toString(),
                out.toString()).redirectErrorStream(true);
        Process p = pb.start();
        String text = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "check_peft.py timed out");
        assertEquals(0, p.exitValue(), text);
        assertTrue(text.startsWith("check_peft: OK"), text);
    }

    @Test
    void badOptionsFailWithOneLine() {
        CliRun r = CliRun.of("train", "--sizes", "64", "--quiet", "--output", out.resolve("x").toString());
        assertEquals(1, r.exitCode());
        assertEquals("tornado-lora train: error: --sizes: expected at least 2 widths (in, out) but got 1", r.err().strip());
        r = CliRun.of("train", "--sizes", "64,48", "--quiet", "--output", out.resolve("x").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().strip().startsWith("tornado-lora train: error: layer fc1 [48, 64]: "), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        r = CliRun.of("train", "--hidden-rank", "9", "--rank", "8", "--quiet", "--output", out.resolve("x").toString());
        assertTrue(r.err().contains("hidden rank must be in [1, rank=8]"), r.err());
    }

    private static int exitCode(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) ? p.exitValue() : -1;
        } catch (IOException | InterruptedException e) {
            return -1;
        }
    }
}
