package dev.tornadolora.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.cli.Main;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune --device tornado:0:0} gives the JVM backend's losses step for step (within 1e-4 relative): QLoRA
 * on the golden MHA Llama from a PEFT adapter with non-zero B, cosine with warm-up, clipping, accumulation. The
 * steps and the evaluations run on the whole-step device plan ({@code PlanDeviceStep}).
 */
class TornadoFinetuneTest {
    @TempDir
    Path dir;

    @Test
    void deviceLossesEqualTheJvmBackendsStepForStep() throws Exception {
        Path fixture = Path.of("..", "src", "core", "src", "test", "resources", "golden", "llama", "qlora_mha")
                .toAbsolutePath().normalize();
        SplittableRandom rng = new SplittableRandom(3);
        ByteBuffer ids = ByteBuffer.allocate(8 * 16 * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 8 * 16; i++) ids.putLong(rng.nextInt(128));
        Path data = dir.resolve("data.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {8, 16}, ids.array()).write(data);
        JsonNode[] logs = new JsonNode[2];
        String[] devices = {"jvm", "tornado:0:0"};
        for (int d = 0; d < 2; d++) {
            Path out = dir.resolve("out-" + d);
            StringWriter err = new StringWriter(), stdout = new StringWriter();
            int code = Main.run(new PrintWriter(stdout), new PrintWriter(err), "finetune",
                    "--model", fixture.resolve("model").toString(), "--data", data.toString(),
                    "--init-adapter", fixture.resolve("adapter").toString(), "--quantize-base", "--steps", "8",
                    "--batch", "2", "--grad-accum", "2", "--lr", "1e-3", "--warmup-steps", "2", "--max-grad-norm", "0.5",
                    "--shuffle", "false", "--output", out.toString(), "--device", devices[d], "--quiet");
            assertEquals(0, code, err.toString());
            // the bytes per step, once, on the terminal (the first step after the one that uploads and compiles)
            assertEquals(d == 1 ? 1 : 0, stdout.toString().split("bus per step: ", -1).length - 1, stdout.toString());
            logs[d] = new ObjectMapper().readTree(out.resolve("log.json").toFile());
        }
        assertEquals("tornado:0:0", logs[1].get("config").get("device").asText());
        // the whole step ran on the device plan, and each step says what crossed the bus
        assertTrue(logs[1].get("config").has("device_step"), logs[1].get("config").toString());
        assertTrue(logs[1].get("steps").get(1).get("copy_in_bytes").asDouble() > 0, logs[1].get("steps").toString());
        for (int i = 0; i < 8; i++) {
            double a = logs[0].get("steps").get(i).get("loss").asDouble(), b = logs[1].get("steps").get(i).get("loss").asDouble();
            assertTrue(Math.abs(a - b) <= 1e-4 * Math.abs(a), "step " + (i + 1) + ": jvm " + a + ", tornado " + b);
        }
        double ea = logs[0].get("summary").get("final_eval_loss").asDouble();
        double eb = logs[1].get("summary").get("final_eval_loss").asDouble();
        assertTrue(Math.abs(ea - eb) <= 1e-4 * ea, "eval loss: jvm " + ea + ", tornado " + eb);
    }
}
