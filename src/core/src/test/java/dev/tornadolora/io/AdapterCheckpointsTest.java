package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.SeqFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdapterCheckpointsTest {
    @TempDir
    Path dir;

    private static SafeTensors seq() {
        return Golden.open("train/seq_silu.safetensors");
    }

    /** The fixture's model with its adapters replaced by other random values. */
    private static Sequential trained() {
        Sequential m = SeqFixture.build(seq(), "silu", true);
        SplittableRandom rng = new SplittableRandom(5);
        for (Parameter p : m.parameters()) {
            for (int i = 0; i < p.numel(); i++) p.data()[i] = (float) rng.nextGaussian();
        }
        return m;
    }

    @Test
    void torchtuneAdapterFromThePyTorchFixtureLoadsAndReproducesTheOutput() {
        Sequential model = SeqFixture.build(seq(), "silu", false);
        AdapterCheckpoints.loadTorchtune(Golden.dir().resolve("train/tt_adapter.safetensors"), model.loraModules());
        model.eval();
        Golden.assertClose(seq().f32("y").data(), model.forward(seq().f32("x")).data(), 1e-5, "y");
    }

    @Test
    void torchtuneRoundTrip() throws IOException {
        Sequential m = trained();
        Path file = dir.resolve("adapter.safetensors");
        AdapterCheckpoints.saveTorchtune(file, m.loraModules(), Map.of("alpha", "8.0"));
        SafeTensors st = SafeTensors.open(file);
        assertEquals(Set.of("fc1.lora_a.weight", "fc1.lora_b.weight", "fc2.lora_a.weight", "fc2.lora_b.weight"), st.names());
        assertEquals("torchtune", st.metadata().get("format"));
        Sequential fresh = SeqFixture.build(seq(), "silu", false);
        AdapterCheckpoints.loadTorchtune(file, fresh.loraModules());
        for (int i = 0; i < m.parameters().size(); i++) {
            assertArrayEquals(m.parameters().get(i).data(), fresh.parameters().get(i).data());
        }
    }

    @Test
    void peftLayoutHasPeftKeysAndConfig() throws IOException {
        Sequential m = trained();
        Path peft = dir.resolve("peft");
        AdapterCheckpoints.savePeft(peft, m.loraModules());
        SafeTensors st = SafeTensors.open(peft.resolve("adapter_model.safetensors"));
        assertEquals(Set.of("base_model.model.fc1.lora_A.weight", "base_model.model.fc1.lora_B.weight",
                "base_model.model.fc2.lora_A.weight", "base_model.model.fc2.lora_B.weight"), st.names());
        assertArrayEquals(m.loraModules().get("fc2").loraB(), st.f32("base_model.model.fc2.lora_B.weight").data());
        JsonNode c = new ObjectMapper().readTree(peft.resolve("adapter_config.json").toFile());
        assertEquals("LORA", c.get("peft_type").asText());
        assertEquals(4, c.get("r").asInt());
        assertEquals(8.0, c.get("lora_alpha").asDouble());
        assertEquals("none", c.get("bias").asText());
        assertEquals(0.0, c.get("lora_dropout").asDouble());
        assertEquals(List.of("fc1", "fc2"), List.of(c.get("target_modules").get(0).asText(), c.get("target_modules").get(1).asText()));
        // fc2 has rank 2 and alpha 3: PEFT's per-module patterns say so
        assertEquals(2, c.get("rank_pattern").get("fc2").asInt());
        assertEquals(3.0, c.get("alpha_pattern").get("fc2").asDouble());

        Sequential fresh = SeqFixture.build(seq(), "silu", false);
        AdapterCheckpoints.loadPeft(peft, fresh.loraModules());
        for (int i = 0; i < m.parameters().size(); i++) {
            assertArrayEquals(m.parameters().get(i).data(), fresh.parameters().get(i).data());
        }
    }

    private Path adapterWithout(String dropKey, Map<String, Tensor> extra) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
        AdapterCheckpoints.stateDict(trained().loraModules()).forEach((k, t) -> {
            if (!k.equals(dropKey)) w.f32(k, t);
        });
        extra.forEach(w::f32);
        Path file = dir.resolve("bad.safetensors");
        w.write(file);
        return file;
    }

    @Test
    void missingAdapterKeyIsReported() throws IOException {
        Path file = adapterWithout("fc2.lora_b.weight", Map.of());
        var e = assertThrows(IllegalArgumentException.class,
                () -> AdapterCheckpoints.loadTorchtune(file, SeqFixture.build(seq(), "silu", false).loraModules()));
        assertEquals(file + ": Missing or unexpected keys when validating state dict:\n"
                + "- Missing LoRA key fc2.lora_b.weight from adapter state dict", e.getMessage());
    }

    @Test
    void unexpectedKeysAreReportedIncludingBaseWeightsInAnAdapterFile() throws IOException {
        Path file = adapterWithout("", Map.of("fc3.lora_a.weight", Tensor.zeros(2, 2), "fc1.weight", Tensor.zeros(16, 12)));
        var e = assertThrows(IllegalArgumentException.class,
                () -> AdapterCheckpoints.loadTorchtune(file, SeqFixture.build(seq(), "silu", false).loraModules()));
        assertEquals(file + ": Missing or unexpected keys when validating state dict:\n"
                + "- Unexpected key(s) loading adapter: fc1.weight, fc3.lora_a.weight", e.getMessage());
    }

    @Test
    void wrongShapeIsReportedWithTheKey() throws IOException {
        Path file = adapterWithout("fc1.lora_a.weight", Map.of("fc1.lora_a.weight", Tensor.zeros(8, 12)));
        Sequential fresh = SeqFixture.build(seq(), "silu", false);
        float[] before = fresh.loraModules().get("fc1").loraA().clone();
        var e = assertThrows(IllegalArgumentException.class, () -> AdapterCheckpoints.loadTorchtune(file, fresh.loraModules()));
        assertEquals(file + ": tensor 'fc1.lora_a.weight': expected shape [4, 12] but got [8, 12]", e.getMessage());
        assertArrayEquals(before, fresh.loraModules().get("fc1").loraA());
    }

    @Test
    void peftConfigThatDisagreesWithTheModelIsRefused() throws IOException {
        Path peft = dir.resolve("peft");
        AdapterCheckpoints.savePeft(peft, trained().loraModules());
        Path config = peft.resolve("adapter_config.json");
        Files.writeString(config, Files.readString(config).replace("\"r\": 4", "\"r\": 16"));
        var e = assertThrows(IllegalArgumentException.class,
                () -> AdapterCheckpoints.loadPeft(peft, SeqFixture.build(seq(), "silu", false).loraModules()));
        assertEquals(config + ": module 'fc1' has r=16, lora_alpha=8.0 but the model's layer has rank=4, alpha=8.0", e.getMessage());
        var missing = assertThrows(IllegalArgumentException.class,
                () -> AdapterCheckpoints.loadPeft(dir.resolve("nope"), Map.<String, LoRALinear>of()));
        assertTrue(missing.getMessage().endsWith("adapter_config.json: no such file (not a PEFT adapter folder)"));
    }

    @Test
    void keyConversionBetweenLayouts() {
        assertEquals("base_model.model.layers.0.attn.q_proj.lora_A.weight",
                AdapterCheckpoints.toPeftKey("layers.0.attn.q_proj.lora_a.weight"));
        assertEquals("layers.0.attn.q_proj.lora_b.weight",
                AdapterCheckpoints.fromPeftKey("base_model.model.layers.0.attn.q_proj.lora_B.weight"));
    }
}
