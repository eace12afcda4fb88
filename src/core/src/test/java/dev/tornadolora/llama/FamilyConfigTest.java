package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The family registry: selection by model_type/architectures, each family's config defaults, parts and refusals,
 * merge keeps them, and the golden fixtures depend on each part.
 */
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
        for (String other : new String[] {"gemma2", "gemma3_text", "phi3", "mixtral"}) {
            String m = refusal(c.deepCopy().put("model_type", other));
            assertTrue(m.contains("model_type \"" + other + "\"")
                    && m.contains("\"llama\", \"qwen2\", \"qwen3\", \"mistral\", \"gemma\""), m);
        }
        ObjectNode wrongArch = c.deepCopy();
        wrongArch.putArray("architectures").add("LlamaForCausalLM");
        String m = refusal(wrongArch);
        assertTrue(m.contains("\"LlamaForCausalLM\" for model_type \"qwen2\"")
                && m.contains("LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM, GemmaForCausalLM"), m);
        ObjectNode gemma2 = config("gemma_tied_geglu");
        gemma2.putArray("architectures").add("Gemma2ForCausalLM");
        m = refusal(gemma2);
        assertTrue(m.contains("\"Gemma2ForCausalLM\" for model_type \"gemma\""), m);
        ObjectNode noType = c.deepCopy();
        noType.remove("model_type");
        assertTrue(refusal(noType).contains("missing model_type"), refusal(noType));
    }

    /** Qwen2Config/Qwen3Config: layer_types as given, else sliding from max_window_layers on, only with use_sliding_window. */
    @Test
    void qwenSlidingLayersFollowQwen2Config() throws IOException {
        for (String name : new String[] {"qwen2_tied_attn", "qwen3_head_dim"}) {
            ObjectNode c = config(name);
            c.remove("layer_types");
            assertEquals(List.of(), LlamaConfig.parse(c).parts().windows(), "use_sliding_window false: no window");
            c.put("use_sliding_window", true).put("max_window_layers", 1);
            c.remove("sliding_window");
            assertEquals(List.of(0, 4096), LlamaConfig.parse(c).parts().windows(), "Qwen2Config's default window 4096");
            c.put("sliding_window", 7);
            assertEquals(List.of(0, 7), LlamaConfig.parse(c).parts().windows());
            c.put("max_window_layers", 0);
            assertEquals(List.of(7, 7), LlamaConfig.parse(c).parts().windows());
            c.putArray("layer_types").add("sliding_attention").add("full_attention");
            LlamaConfig explicit = LlamaConfig.parse(c);
            assertEquals(List.of(7, 0), explicit.parts().windows(), "layer_types as given");
            assertEquals(explicit, LlamaConfig.parse(JSON.readTree(explicit.toJson())), "toJson reads back equal");
            String m = refusal(c.deepCopy().put("use_sliding_window", false));
            assertTrue(m.contains("\"sliding_attention\" but no sliding_window"), m);
            ObjectNode chunked = c.deepCopy();
            chunked.putArray("layer_types").add("chunked_attention").add("full_attention");
            m = refusal(chunked);
            assertTrue(m.contains("layer_types entry \"chunked_attention\" is not supported"), m);
            ObjectNode three = c.deepCopy();
            three.putArray("layer_types").add("full_attention").add("full_attention").add("full_attention");
            assertTrue(refusal(three).contains("layer_types has 3 entries but num_hidden_layers is 2"));
            assertTrue(refusal(config(name).put("hidden_act", "gelu")).contains("gelu"));
        }
        String m = refusal(config("qwen3_head_dim").put("attention_bias", true));
        assertTrue(m.contains("attention_bias true is not supported for Qwen3"), m);
    }

    /** MistralConfig: sliding_window default 4096 on every layer, null for none; layer_types ignored as transformers does. */
    @Test
    void mistralWindowDefaultsAndNull() throws IOException {
        ObjectNode c = config("mistral_window_gqa");
        LlamaConfig m = LlamaConfig.parse(c);
        assertEquals(ModelFamily.MISTRAL, m.parts().family());
        assertEquals(List.of(5, 5), m.parts().windows());
        assertEquals(m, LlamaConfig.parse(JSON.readTree(m.toJson())), "toJson reads back equal");
        c.remove("sliding_window");
        assertEquals(List.of(4096, 4096), LlamaConfig.parse(c).parts().windows(), "MistralConfig's default");
        c.putNull("sliding_window");
        LlamaConfig none = LlamaConfig.parse(c);
        assertEquals(List.of(), none.parts().windows());
        assertEquals(none, LlamaConfig.parse(JSON.readTree(none.toJson())));
        c.put("sliding_window", 5).putArray("layer_types").add("full_attention").add("full_attention");
        assertEquals(List.of(5, 5), LlamaConfig.parse(c).parts().windows(), "MistralModel ignores layer_types");
        assertTrue(refusal(c.deepCopy().put("sliding_window", 0)).contains("sliding_window must be a positive integer"));
        assertTrue(refusal(c.deepCopy().put("hidden_act", "gelu")).contains("hidden_act \"gelu\""));
    }

    /** GemmaConfig: its defaults (head_dim 256, tied), "gelu" read as gelu_pytorch_tanh, its refusals by name. */
    @Test
    void gemmaPartsDefaultsAndRefusals() throws IOException {
        ObjectNode c = config("gemma_tied_geglu");
        LlamaConfig g = LlamaConfig.parse(c);
        ModelFamily.Parts p = g.parts();
        assertTrue(p.normPlusOne() && p.embedScale() && !p.qkvBias() && !p.qkNorm());
        assertEquals(ModelFamily.Activation.GELU_TANH, p.activation());
        assertEquals(List.of(), p.windows());
        assertEquals(g, LlamaConfig.parse(JSON.readTree(g.toJson())), "toJson reads back equal");
        c.remove("head_dim");
        c.remove("tie_word_embeddings");
        LlamaConfig d = LlamaConfig.parse(c);
        assertEquals(256, d.headDim(), "GemmaConfig's head_dim default");
        assertTrue(d.tieWordEmbeddings(), "GemmaConfig ties by default");
        assertEquals(ModelFamily.Activation.GELU_TANH, LlamaConfig.parse(c.deepCopy().put("hidden_act", "gelu")).parts().activation());
        assertTrue(refusal(c.deepCopy().put("hidden_act", "silu")).contains("hidden_act \"silu\" is not supported for Gemma"));
        assertTrue(refusal(c.deepCopy().put("attention_bias", true)).contains("attention_bias true is not supported for Gemma"));
        assertTrue(refusal(c.deepCopy().put("use_bidirectional_attention", true)).contains("use_bidirectional_attention"));
    }

    /**
     * The fixtures exercise the parts: Mistral and Qwen2's sliding fixtures without their window, and Gemma's
     * with the Llama parts, give logits far from transformers' (so FamilyGoldenTest would notice a part missing).
     */
    @Test
    void withoutItsPartsAFamilyMissesItsGoldenLogits() throws Exception {
        String[][] cases = {{"mistral_window_gqa", "sliding_window", "null"}, {"qwen2_sliding_layers", "use_sliding_window", "false"}};
        for (String[] k : cases) {
            ObjectNode c = config(k[0]);
            if (k[2].equals("null")) c.putNull(k[1]); else c.put(k[1], false);
            if (k[0].startsWith("qwen2")) c.remove("layer_types");
            assertTrue(logitsError(k[0], LlamaConfig.parse(c)) > 1e-3, k[0] + " without its window");
            assertTrue(logitsError(k[0], LlamaConfig.parse(config(k[0]))) < 1e-4, k[0]);
        }
        LlamaConfig gemma = LlamaConfig.parse(config("gemma_tied_geglu"));
        for (ModelFamily.Parts wrong : new ModelFamily.Parts[] {
                new ModelFamily.Parts(ModelFamily.GEMMA, false, false, false, ModelFamily.Activation.GELU_TANH, true, List.of()),
                new ModelFamily.Parts(ModelFamily.GEMMA, false, false, true, ModelFamily.Activation.SILU, true, List.of()),
                new ModelFamily.Parts(ModelFamily.GEMMA, false, false, true, ModelFamily.Activation.GELU_TANH, false, List.of())}) {
            LlamaConfig c = new LlamaConfig(gemma.vocabSize(), gemma.hiddenSize(), gemma.intermediateSize(),
                    gemma.numHiddenLayers(), gemma.numAttentionHeads(), gemma.numKeyValueHeads(), gemma.headDim(),
                    gemma.rmsNormEps(), gemma.ropeTheta(), gemma.ropeScaling(), gemma.tieWordEmbeddings(),
                    gemma.maxPositionEmbeddings(), gemma.bosTokenId(), gemma.eosTokenId(), gemma.torchDtype(), wrong);
            assertTrue(logitsError("gemma_tied_geglu", c) > 1e-3, "Gemma with " + wrong);
        }
    }

    /** max|a − b| / max|b| of the fixture's model (with its adapter) under config {@code c} against its golden logits. */
    static double logitsError(String name, LlamaConfig c) throws IOException {
        Path dir = FamilyGoldenTest.ROOT.resolve(name);
        var adapter = dev.tornadolora.io.PeftAdapters.read(dir.resolve("adapter"));
        Map<String, Tensor> w = new java.util.LinkedHashMap<>();
        try (HfWeights files = HfWeights.open(dir.resolve("model"))) {
            for (String n : files.names()) w.put(n, new Tensor(files.shape(n), files.read(n)));
        }
        TokenTensors.Tokens ids = TokenTensors.read(dev.tornadolora.io.SafeTensors.open(dir.resolve("input.safetensors")),
                "input_ids");
        float[] expected = dev.tornadolora.io.SafeTensors.open(dir.resolve("expected.safetensors")).f32("logits").data();
        try (LlamaForCausalLM m = LlamaForCausalLM.fromWeights(c, w, LoraSettings.of(adapter.config()), TestDevices.jvm())) {
            m.loadAdapters(adapter.tensors());
            float[] z = m.logits(ids.values(), ids.batch(), ids.seq()).data();
            double diff = 0, max = 0;
            for (int i = 0; i < z.length; i++) {
                diff = Math.max(diff, Math.abs(z[i] - expected[i]));
                max = Math.max(max, Math.abs(expected[i]));
            }
            return diff / max;
        }
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
        for (String name : new String[] {"qwen2_tied_attn", "qwen3_head_dim", "gemma_tied_geglu", "mistral_window_gqa"}) {
            Path dir = FamilyGoldenTest.ROOT.resolve(name);
            dev.tornadolora.io.PeftAdapters.Adapter adapter = dev.tornadolora.io.PeftAdapters.read(dir.resolve("adapter"));
            int[] ids = {3, 17, 5, 42, 9, 0, 11};
            try (LlamaForCausalLM m = LlamaForCausalLM.load(dir.resolve("model"), LoraSettings.of(adapter.config()), TestDevices.jvm())) {
                m.loadAdapters(adapter.tensors());
                Map<String, Tensor> merged = m.mergedWeights();
                if (name.startsWith("qwen2")) {
                    assertTrue(merged.containsKey("model.layers.1.self_attn.v_proj.bias"));
                    assertFalse(merged.containsKey("model.layers.1.self_attn.o_proj.bias"));
                } else if (name.startsWith("qwen3")) {
                    assertTrue(merged.containsKey("model.layers.1.self_attn.k_norm.weight"));
                } else if (name.startsWith("gemma")) {
                    // the stored w of Gemma's (1 + w) norm, not 1 + w
                    try (HfWeights files = HfWeights.open(dir.resolve("model"))) {
                        assertTrue(java.util.Arrays.equals(files.read("model.norm.weight"),
                                merged.get("model.norm.weight").data()));
                    }
                }
                float[] adapted = m.logits(ids, 1, ids.length).data();
                LoraSettings none = LoraSettings.none(false);
                try (LlamaForCausalLM base = LlamaForCausalLM.fromWeights(m.config(), merged, none, TestDevices.jvm())) {
                    float[] z = base.logits(ids, 1, ids.length).data();
                    Golden.assertClose(adapted, z, 1e-5, name + " merged logits");
                    assertFalse(java.util.Arrays.equals(adapted, new float[adapted.length]));
                }
            }
        }
    }
}
