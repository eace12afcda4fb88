package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;

import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code finetune --merge} on the Qwen2 and Qwen3 golden models: merged/ is the family's checkpoint (its
 * model_type and class, Qwen2's q/k/v biases, Qwen3's q/k norms), and it gives the logits of the base with the
 * trained PEFT adapter. (transformers loads the same merged/ folder to the PEFT model's logits within 2e-7: checked
 * by hand with the oracle, see docs/models.md.)
 */
class FamilyFinetuneTest {
    static Path fixture(String name) {
        for (String p : new String[] {"../core/src/test/resources/golden/families/", "src/core/src/test/resources/golden/families/"}) {
            if (Files.isDirectory(Path.of(p + name))) return Path.of(p + name).toAbsolutePath().normalize();
        }
        Assumptions.abort("no family fixture " + name + " (scripts/family_golden.py writes it)");
        return null;
    }

    @Test
    void mergedCheckpointIsTheFamilysAndEqualsBasePlusAdapter(@TempDir Path tmp) throws Exception {
        for (String[] c : new String[][] {{"qwen2_tied_attn", "qwen2", "model.layers.1.self_attn.k_proj.bias"},
                {"qwen3_head_dim", "qwen3", "model.layers.1.self_attn.q_norm.weight"}}) {
            Path model = fixture(c[0]).resolve("model"), out = tmp.resolve(c[0]);
            int rows = 8, seq = 12;
            ByteBuffer b = ByteBuffer.allocate(8 * rows * seq).order(ByteOrder.LITTLE_ENDIAN);
            SplittableRandom rng = new SplittableRandom(7);
            for (int i = 0; i < rows * seq; i++) b.putLong(rng.nextInt(96));
            Path data = tmp.resolve(c[0] + ".safetensors");
            new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {rows, seq}, b.array()).write(data);
            CliRun r = CliRun.of("finetune", "--model", model.toString(), "--data", data.toString(), "--output",
                    out.toString(), "--device", "jvm", "--quiet", "--seq-len", "12", "--steps", "2", "--batch", "2",
                    "--lora-rank", "4", "--lora-alpha", "8", "--lora-mlp", "--lr", "1e-2", "--merge");
            assertEquals(0, r.exitCode(), r.err());
            JsonNode cfg = new ObjectMapper().readTree(out.resolve("merged/config.json").toFile());
            assertEquals(c[1], cfg.get("model_type").asText());
            assertEquals(cfg.get("architectures").get(0).asText().toLowerCase(), c[1] + "forcausallm");
            assertTrue(SafeTensors.open(out.resolve("merged/model.safetensors")).contains(c[2]), c[2]);
            int[] ids = {3, 17, 5, 42, 9, 0, 11};
            dev.tornadolora.io.PeftAdapters.Adapter adapter = dev.tornadolora.io.PeftAdapters.read(out.resolve("peft"));
            LoraSettings none = LoraSettings.none(false);
            try (LlamaForCausalLM tuned = LlamaForCausalLM.load(model, LoraSettings.of(adapter.config()), TestDevices.jvm());
                 LlamaForCausalLM merged = LlamaForCausalLM.load(out.resolve("merged"), none, TestDevices.jvm())) {
                tuned.loadAdapters(adapter.tensors());
                float[] a = tuned.logits(ids, 1, ids.length).data(), m = merged.logits(ids, 1, ids.length).data();
                double err = Golden.relativeErrorAgainstNonZero(a, m);
                assertTrue(err <= 1e-5, c[0] + ": merged vs adapter logits " + err);
            }
        }
    }
}
