package dev.tornadolora.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bench --ops step} on the small model, fp32 and a BF16 checkpoint, LoRA on all seven projections, on
 * {@code jvm} and {@code tornado:0:0}: the device's steps run on the whole-step plan and verify (three losses within
 * 1e-5 relative of the JVM backend's), and the files carry the device memory and the bytes moved per step, which
 * from the second step on are the step's ids and labels, a few scalars and TornadoVM's launch frames, together
 * within 2 × (ids + labels bytes) + 4 KiB for fp32. The BF16 model, kept 16-bit on the device, takes less device
 * memory than the fp32 one. QLoRA's step plan on this model, against the JVM backend and within its bus bound, is
 * {@link DeviceStepParityTest}'s (twenty steps; compiling a third plan here would add nothing but time).
 */
class TornadoBenchStepTest {
    @TempDir
    Path dir;

    @Test
    void theModelStepVerifiesOnTheDevicePlan() throws Exception {
        StringWriter out = new StringWriter(), err = new StringWriter();
        Path json = dir.resolve("bench.json");
        int code = Main.run(new PrintWriter(out), new PrintWriter(err), "bench", "--device", "jvm", "--device",
                "tornado:0:0", "--ops", "step", "--step-shapes", "small", "--bases", "fp32,bf16", "--step-modules",
                "all", "--reps", "2", "--min-reps", "2", "--warmup", "0", "--budget", "0", "--json", json.toString(),
                "--csv", dir.resolve("bench.csv").toString(), "--png", dir.resolve("bench.png").toString());
        assertEquals(0, code, out + "\n" + err);
        JsonNode rows = new ObjectMapper().readTree(json.toFile());
        assertEquals(4, rows.size(), rows.toString());
        Set<String> seen = new HashSet<>();
        Map<String, Long> deviceBytes = new HashMap<>();
        for (JsonNode r : rows) {
            assertEquals("step", r.get("op").asText(), r.toString());
            assertTrue(r.get("verified").asBoolean(), r.toString());
            seen.add(r.get("device").asText() + " " + r.get("base").asText() + " " + r.get("model").asText());
            if (r.get("device").asText().equals("tornado:0:0")) {
                assertEquals("jvm", r.get("reference").asText(), r.toString());
                assertTrue(r.get("max_rel_error").asDouble() <= 1e-5, r.toString());
                assertTrue(r.get("device_bytes").asLong() > 0, r.toString());
                deviceBytes.put(r.get("base").asText(), r.get("device_bytes").asLong());
                // 2 × 32 ids and as many labels as int32 = 512 B, plus scalars and the launch frames: every base
                // within the budget of 2 × (ids + labels bytes) + 4 KiB per step, frames included
                long moved = r.get("copy_in_bytes").asLong() + r.get("copy_out_bytes").asLong();
                long budget = 2 * 512 + 4096;
                assertTrue(moved >= 512 && moved <= budget, r.toString());
            } else {
                assertTrue(r.get("copy_in_bytes").isNull(), r.toString());
            }
        }
        assertEquals(4, seen.size(), seen.toString());
        assertTrue(deviceBytes.get("bf16") < deviceBytes.get("fp32"), deviceBytes.toString());
        assertTrue(Files.size(dir.resolve("bench.png")) > 0);
        assertTrue(out.toString().contains("step"), out.toString());
    }
}
