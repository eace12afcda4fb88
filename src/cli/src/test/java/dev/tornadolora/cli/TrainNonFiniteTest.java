package dev.tornadolora.cli;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A run that diverges stops with one line naming why, and never writes a poisoned checkpoint. */
class TrainNonFiniteTest {
    @TempDir
    Path dir;

    private CliRun diverging(Path out, String... more) {
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("train", "--sizes", "64,64,64",
                "--rank", "4", "--steps", "50", "--batch", "16", "--lr", "1e30", "--max-grad-norm", "0",
                "--warmup-steps", "0", "--block-size", "32", "--scaler-block-size", "8", "--save-every", "1",
                "--device", "jvm", "--quiet", "--output", out.toString()));
        args.addAll(java.util.List.of(more));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void aNonFiniteLossStopsTrainingBeforeTheUpdate() {
        Path out = dir.resolve("run");
        CliRun r = diverging(out);
        assertEquals(1, r.exitCode());
        assertTrue(r.err().matches("tornado-lora train: error: training stopped at step \\d+: the loss is (Infinity|NaN)"
                + " \\(try a lower learning rate\\); parameters were not updated\\n"), r.err());
        assertOnlyFiniteCheckpoint(out);
    }

    @Test
    void checkFiniteNamesTheLayerTensorAndElement() {
        Path out = dir.resolve("checked");
        CliRun r = diverging(out, "--check-finite");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().matches("tornado-lora train: error: non-finite value (-?Infinity|NaN) in fc[12]\\."
                + "(x|y|dy|dx|lora_[ab]\\.weight(\\.grad)?) at index \\d+ \\(\\[\\d+, \\d+] of shape \\[\\d+, \\d+]\\)\\n"), r.err());
        assertOnlyFiniteCheckpoint(out);
    }

    /** Whatever checkpoint the run wrote before it stopped holds finite adapters and optimizer state only. */
    private static void assertOnlyFiniteCheckpoint(Path out) {
        Path state = out.resolve("training_state.safetensors");
        assertTrue(Files.exists(state), "the checkpoint of step 1 (--save-every 1)");
        SafeTensors st = SafeTensors.open(state);
        for (String name : st.names()) {
            Tensor t = st.f32(name);
            for (float v : t.data()) assertTrue(Float.isFinite(v), name + " holds " + v);
        }
    }
}
