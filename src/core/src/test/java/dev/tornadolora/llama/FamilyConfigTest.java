package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The family registry: selection by model_type/architectures, each family's parts and refusals, merge keeps them. */
class FamilyConfigTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static ObjectNode config(String name) throws IOException {
        return (ObjectNode) JSON.readTree(Files.readString(FamilyGoldenTest.ROOT.resolve(name).resolve("model/config.json")));
    }

    static String refusal(ObjectNode c) {
        return assertThrows(IllegalArgumentException.class, () -> LlamaConfig.parse(c)).getMessage();
    }

    @Test
    void familiesArePickedByModelTypeAndTheirPartsRoundTrip() throws IOException {
        LlamaConfig q2 = LlamaConfig.parse(config("qwen2_tied_attn"));
        assertEquals(new ModelFamily.Parts(ModelFamily.QWEN2, true, false), q2.parts());
        assertEquals(1e6, q2.ropeTheta());
        assertTrue(q2.tieWordEmbeddings());
        assertEquals(8, q2.headDim());
        LlamaConfig q3 = LlamaConfig.parse(config("qwen3_head_dim"));
        assertEquals(new ModelFamily.Parts(ModelFamily.QWEN3, false, true), q3.parts());
        assertEquals(16, q3.headDim(), "explicit head_dim, not hidden/heads = 8");
        for (LlamaConfig c : new LlamaConfig[] {q2, q3}) {
            assertEquals(c, LlamaConfig.parse(JSON.readTree(c.toJson())), "toJson reads back equal");
        }
        ObjectNode noHeadDim = config("qwen3_head_dim");
        noHeadDim.remove("head_dim");
        assertEquals(128, LlamaConfig.parse(noHeadDim).headDim(), "Qwen3Config's head_dim default");
        ObjectNode q2NoHeadDim = config("qwen2_tied_attn");
        assertEquals(32 / 4, LlamaConfig.parse(q2NoHeadDim).headDim(), "Qwen2: hidden/heads");
    }

    @Test
    void unknownAndMismatchedArchitecturesAreRefusedListingTheSupported() throws IOException {
        ObjectNode c = config("qwen2_tied_attn");
        String m = refusal(c.deepCopy().put("model_type", "mistral"));
        assertTrue(m.contains("model_type \"mistral\"") && m.contains("\"llama\", \"qwen2\", \"qwen3\""), m);
        ObjectNode wrongArch = c.deepCopy();
        wrongArch.putArray("architectures").add("LlamaForCausalLM");
        m = refusal(wrongArch);
        assertTrue(m.contains("\"LlamaForCausalLM\" for model_type \"qwen2\"")
                && m.contains("LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"), m);
        ObjectNode noType = c.deepCopy();
        noType.remove("model_type");
        assertTrue(refusal(noType).contains("missing model_type"), refusal(noType));
    }

    @Test
    void slidingWindowAndQwen3BiasesAreRefusedByName() throws IOException {
        for (String name : new String[] {"qwen2_tied_attn", "qwen3_head_dim"}) {
            ObjectNode c = config(name);
            String m = refusal(c.deepCopy().put("use_sliding_window", true));
            assertTrue(m.contains("use_sliding_window true is not supported"), m);
            ObjectNode types = c.deepCopy();
            types.putArray("layer_types").add("full_attention").add("sliding_attention");
            m = refusal(types);
            assertTrue(m.contains("\"sliding_attention\" is not supported"), m);
            assertTrue(refusal(c.deepCopy().put("hidden_act", "gelu")).contains("gelu"));
        }
        String m = refusal(config("qwen3_head_dim").put("attention_bias", true));
        assertTrue(m.contains("attention_bias true is not supported for Qwen3"), m);
    }

    @Test
    void aQwen2FileWithoutItsBiasesOrAQwen3WithoutItsNormsIsRefused() throws IOException {
        for (String[] c : new String[][] {{"qwen2_tied_attn", "model.layers.0.self_attn.k_proj.bias"},
                {"qwen3_head_dim", "model.layers.1.self_attn.q_norm.weight"}}) {
            Path dir = FamilyGoldenTest.ROOT.resolve(c[0]).resolve("model");
            LlamaConfig config = LlamaConfig.read(dir.resolve("config.json"));
            Map<String, Tensor> w;
            try (HfWeights files = HfWeights.open(dir)) {
                w = new java.util.LinkedHashMap<>();
                for (String n : files.names()) w.put(n, new Tensor(files.shape(n), files.read(n)));
            }
            assertNotNull(w.remove(c[1]), c[1]);
            String m = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.fromWeights(config, w,
                    LoraSettings.defaults(), TestDevices.jvm())).getMessage();
            assertTrue(m.contains("missing tensor '" + c[1] + "'"), m);
        }
    }

    /** Merged weights hold the family's biases and norms: a model built from them gives the adapted model's logits. */
    @Test
    void mergeKeepsTheBiasesAndNorms() throws IOException {
        for (String name : new String[] {"qwen2_tied_attn", "qwen3_head_dim"}) {
            Path dir = FamilyGoldenTest.ROOT.resolve(name);
            dev.tornadolora.io.PeftAdapters.Adapter adapter = dev.tornadolora.io.PeftAdapters.read(dir.resolve("adapter"));
            int[] ids = {3, 17, 5, 42, 9, 0, 11};
            try (LlamaForCausalLM m = LlamaForCausalLM.load(dir.resolve("model"), LoraSettings.of(adapter.config()), TestDevices.jvm())) {
                m.loadAdapters(adapter.tensors());
                Map<String, Tensor> merged = m.mergedWeights();
                if (name.startsWith("qwen2")) {
                    assertTrue(merged.containsKey("model.layers.1.self_attn.v_proj.bias"));
                    assertFalse(merged.containsKey("model.layers.1.self_attn.o_proj.bias"));
                } else {
                    assertTrue(merged.containsKey("model.layers.1.self_attn.k_norm.weight"));
                }
                float[] adapted = m.logits(ids, 1, ids.length).data();
                LoraSettings none = LoraSettings.none(false);
                try (LlamaForCausalLM base = LlamaForCausalLM.fromWeights(m.config(), merged, none, TestDevices.jvm())) {
                    float[] z = base.logits(ids, 1, ids.length).data();
                    LlamaGoldenTest.assertClose(name + " merged logits", adapted, z, 1e-5);
                    assertFalse(java.util.Arrays.equals(adapted, new float[adapted.length]));
                }
            }
        }
    }
}
