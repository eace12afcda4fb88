package dev.tornadolora.tornado;

import dev.tornadolora.cli.Main;
import dev.tornadolora.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code forward --device tornado:0:0} against transformers + PEFT (the core project's Llama fixtures, the
 * tolerances of {@code scripts/forward_parity.py}): fp32 (sharded, llama3 rope, LoRA on q, v and the MLP) and QLoRA
 * (BF16 checkpoint, NF4 base, tied embeddings, LoRA everywhere), both on the whole-model device plan
 * ({@link PlanDeviceForward}: the logits by its forward graphs, the loss and the adapters' gradients by the training
 * step's forward and backward).
 */
class TornadoLlamaTest {
    @TempDir
    Path dir;

    @Test
    void forwardOnTheDeviceMatchesTransformersAndPeft() {
        check("gqa4_llama3_mlp_sharded", false);
        check("qlora_gqa2_all_bf16", true);
    }

    private void check(String name, boolean quantize) {
        Path c = Path.of("..", "src", "core", "src", "test", "resources", "golden", "llama", name).toAbsolutePath().normalize();
        Path out = dir.resolve(name + ".safetensors");
        StringWriter err = new StringWriter();
        String[] base = {"forward", "--device", "tornado:0:0", "--model", c.resolve("model").toString(),
                "--input", c.resolve("input.safetensors").toString(), "--adapter", c.resolve("adapter").toString(),
                "--output", out.toString()};
        String[] args = quantize ? java.util.stream.Stream.concat(java.util.Arrays.stream(base),
                java.util.stream.Stream.of("--quantize-base")).toArray(String[]::new) : base;
        int code = Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err), args);
        assertEquals(0, code, err.toString());
        SafeTensors o = SafeTensors.open(out), e = SafeTensors.open(c.resolve("expected.safetensors"));
        assertEquals("tornado:0:0", o.metadata().get("device"));
        assertTrue(o.metadata().containsKey("device_forward"), name + ": not on the device plan: " + o.metadata());
        int grads = 0;
        for (String k : e.names()) {
            float[] want = e.floats(k).data(), got = o.f32(k).data();
            double d = 0, m = 0;
            for (int i = 0; i < want.length; i++) {
                d = Math.max(d, Math.abs(want[i] - got[i]));
                m = Math.max(m, Math.abs(want[i]));
            }
            double tol = k.equals("loss") ? 1e-5 : 1e-4;
            assertTrue(d <= tol * m, name + " " + k + ": max|a-b|/max|b| = " + d / m);
            if (k.endsWith(".grad")) grads++;
        }
        assertTrue(grads > 0, name + ": no adapter gradients compared");
    }
}
