package dev.tornadolora.io;

import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelCheckpointTest {
    @TempDir
    Path dir;

    private static Sequential model(boolean nf4) {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", LoRALinear.builder(64, 64).rank(4).alpha(8).bias(true).quantizeBase(nf4)
                .quantizationKwarg("scaler_block_size", nf4 ? 16 : 0).seed(1).build());
        m.put("act1", Activation.relu());
        m.put("fc2", LoRALinear.builder(64, 32).rank(2).alpha(2).quantizeBase(nf4)
                .quantizationKwarg("scaler_block_size", nf4 ? 16 : 0).seed(2).build());
        Sequential s = new Sequential(m);
        SplittableRandom rng = new SplittableRandom(3);
        for (Parameter p : s.parameters()) {
            for (int i = 0; i < p.numel(); i++) p.data()[i] = (float) rng.nextGaussian() * 0.1f;
        }
        return s.eval();
    }

    private static Tensor input() {
        SplittableRandom rng = new SplittableRandom(4);
        float[] x = new float[3 * 64];
        for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
        return Tensor.of(x, 3, 64);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void roundTripReproducesTheModel(boolean nf4) throws IOException {
        Sequential m = model(nf4);
        Path file = dir.resolve("model.safetensors");
        ModelCheckpoint.save(file, m, true);
        SafeTensors st = SafeTensors.open(file);
        assertEquals(nf4, st.contains("fc1.weight.quantized_data"));
        assertEquals(!nf4, st.contains("fc1.weight"));
        Sequential back = ModelCheckpoint.load(file).eval();
        assertEquals(nf4, back.loraModules().get("fc2").quantizeBase());
        assertArrayEquals(m.forward(input()).data(), back.forward(input()).data());
    }

    @Test
    void baseOnlyFileKeepsFreshAdapters() throws IOException {
        Path file = dir.resolve("base.safetensors");
        ModelCheckpoint.save(file, model(true), false);
        assertTrue(SafeTensors.open(file).names().stream().noneMatch(k -> k.contains("lora")));
        Sequential back = ModelCheckpoint.load(file);
        for (float b : back.loraModules().get("fc1").loraB()) assertEquals(0f, b);
    }

    @Test
    void mixedNf4BlockSizesAreRefusedBeforeWriting() {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", LoRALinear.builder(64, 64).quantizeBase(true).quantizationKwarg("scaler_block_size", 16).build());
        m.put("fc2", LoRALinear.builder(64, 64).quantizeBase(true).quantizationKwarg("scaler_block_size", 32).build());
        Path file = dir.resolve("mixed.safetensors");
        var e = assertThrows(IllegalArgumentException.class, () -> ModelCheckpoint.save(file, new Sequential(m), false));
        assertEquals("NF4 layers [fc1, fc2] use different block sizes [64/16, 64/32] but a file holds one"
                + " block_size/scaler_block_size", e.getMessage());
        assertTrue(!java.nio.file.Files.exists(file));
    }

    @Test
    void missingAndUnexpectedKeysAreNamed() throws IOException {
        Path file = dir.resolve("model.safetensors");
        ModelCheckpoint.save(file, model(false), true);
        SafeTensors full = SafeTensors.open(file);
        Path bad = dir.resolve("bad.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(full.metadata());
        for (String k : full.names()) {
            if (!k.equals("fc1.bias") && !k.equals("fc2.lora_b.weight")) w.copy(full, k);
        }
        w.f32("fc3.weight", Tensor.zeros(2, 2)).write(bad);
        var e = assertThrows(IllegalArgumentException.class, () -> ModelCheckpoint.load(bad));
        assertEquals(bad + ": Missing or unexpected keys when validating state dict:\n"
                + "- Missing non-LoRA key fc1.bias from base model dict\n"
                + "- Missing LoRA key fc2.lora_b.weight from adapter state dict\n"
                + "- Unexpected key(s) loading base model: fc3.weight", e.getMessage());
    }
}
