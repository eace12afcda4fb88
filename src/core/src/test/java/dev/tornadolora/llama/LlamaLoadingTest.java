package dev.tornadolora.llama;

import dev.tornadolora.testing.TestDevices;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json validation, checkpoint validation, adapter keys and PEFT folders. */
class LlamaLoadingTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Path golden;

    @BeforeAll
    static void fixtures() {
        golden = LlamaGoldenTest.goldenRoot();
        // The fixtures are committed: their absence is a failure, not a reason to skip.
        org.junit.jupiter.api.Assertions.assertTrue(Files.isDirectory(golden), "no Llama golden fixtures at " + golden);
    }

    static ObjectNode config(String name) throws IOException {
        return (ObjectNode) JSON.readTree(Files.readString(golden.resolve(name).resolve("model/config.json")));
    }

    static String refusal(ObjectNode c) {
        return assertThrows(IllegalArgumentException.class, () -> LlamaConfig.parse(c)).getMessage();
    }

    @Test
    void configValuesAreValidatedAgainstEachOther() throws IOException {
        ObjectNode c = config("gqa2_bf16_attn");
        LlamaConfig ok = LlamaConfig.parse(c);
        assertEquals(ok, LlamaConfig.parse(JSON.readTree(ok.toJson())), "toJson reads back equal");

        ObjectNode huge = c.deepCopy().put("hidden_size", 1_000_000_000);
        huge.remove("head_dim");
        assertTrue(refusal(huge).contains("more than a Java array holds"), refusal(huge));
        assertTrue(refusal(c.deepCopy().put("model_type", "mistral")).contains("unknown architecture"));
        assertTrue(refusal(c.deepCopy().put("attention_bias", true)).contains("attention_bias"));
        assertTrue(refusal(c.deepCopy().put("mlp_bias", true)).contains("mlp_bias"));
        assertTrue(refusal(c.deepCopy().put("hidden_act", "gelu")).contains("gelu"));
        assertTrue(refusal(c.deepCopy().put("num_key_value_heads", 3)).contains("not a multiple"));
        assertTrue(refusal(c.deepCopy().put("vocab_size", 1.5)).contains("'vocab_size' must be an integer"));
        // One rule for integers, transformers' (its strict config refuses a float for an int field): 64.0 too.
        assertTrue(refusal(c.deepCopy().put("hidden_size", 64.0)).contains("'hidden_size' must be an integer but is 64.0"));
        assertTrue(refusal(c.deepCopy().put("rms_norm_eps", -1)).contains("rms_norm_eps"));
        ObjectNode yarn = c.deepCopy();
        ((ObjectNode) yarn.get("rope_parameters")).put("rope_type", "yarn");
        assertTrue(refusal(yarn).contains("rope type \"yarn\" is not supported"), refusal(yarn));
        ObjectNode legacy = c.deepCopy();
        legacy.remove("rope_parameters");
        legacy.put("rope_theta", 500000.0);
        legacy.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);
        LlamaConfig l3 = LlamaConfig.parse(legacy);
        assertEquals(500000.0, l3.ropeTheta());
        assertEquals(new RopeScaling(8, 1, 4, 8192), l3.ropeScaling());
        ObjectNode dyn = c.deepCopy();
        dyn.remove("rope_parameters");
        dyn.putObject("rope_scaling").put("type", "dynamic").put("factor", 2.0);
        assertTrue(refusal(dyn).contains("\"dynamic\""));
    }

    @Test
    void checkpointTensorsAreCheckedBeforeLoading(@TempDir Path tmp) throws IOException {
        Path model = golden.resolve("odd_heads_rslora_lm_head").resolve("model");
        LlamaConfig c = LlamaConfig.read(model.resolve("config.json"));
        Map<String, Tensor> w = new LinkedHashMap<>();
        dev.tornadolora.io.SafeTensors st = dev.tornadolora.io.SafeTensors.open(model.resolve("model.safetensors"));
        for (String n : st.names()) w.put(n, st.floats(n));
        LoraSettings none = LoraSettings.none(false);
        LlamaForCausalLM.fromWeights(c, w, none, TestDevices.jvm()).close();

        String nf4 = assertThrows(IllegalArgumentException.class,
                () -> LlamaForCausalLM.fromWeights(c, w, LoraSettings.none(true), TestDevices.jvm())).getMessage();
        assertTrue(nf4.contains("model.layers.0.self_attn.q_proj.weight cannot be NF4"), nf4);

        Map<String, Tensor> missing = new LinkedHashMap<>(w);
        missing.remove("model.layers.1.mlp.up_proj.weight");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.fromWeights(c, missing, none, TestDevices.jvm()))
                .getMessage().contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"));
        Map<String, Tensor> bias = new LinkedHashMap<>(w);
        bias.put("model.layers.0.self_attn.q_proj.bias", Tensor.zeros(c.qDim()));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.fromWeights(c, bias, none, TestDevices.jvm()))
                .getMessage().contains("biases are not supported"));
        Map<String, Tensor> wrong = new LinkedHashMap<>(w);
        wrong.put("model.norm.weight", Tensor.zeros(c.hiddenSize() + 1));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.fromWeights(c, wrong, none, TestDevices.jvm()))
                .getMessage().contains("but config.json implies"));

        // A config whose sizes the file does not back is refused from the headers, before any tensor is read.
        Path lying = tmp.resolve("lying");
        Files.createDirectories(lying);
        Files.copy(model.resolve("model.safetensors"), lying.resolve("model.safetensors"));
        ObjectNode cfg = (ObjectNode) JSON.readTree(Files.readString(model.resolve("config.json")));
        cfg.put("intermediate_size", 100_000);
        Files.writeString(lying.resolve("config.json"), cfg.toString());
        String msg = assertThrows(IllegalArgumentException.class,
                () -> LlamaForCausalLM.load(lying, none, TestDevices.jvm())).getMessage();
        assertTrue(msg.contains("gate_proj.weight' has shape [72, 48] but config.json implies [100000, 48]"), msg);
        Files.delete(lying.resolve("model.safetensors"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(lying, none, TestDevices.jvm()))
                .getMessage().contains("no model.safetensors"));
    }

    @Test
    void adapterConfigIsWrittenAsPeftWritesIt(@TempDir Path tmp) throws IOException {
        Path fixture = golden.resolve("odd_heads_rslora_lm_head");
        PeftAdapters.Adapter a = PeftAdapters.read(fixture.resolve("adapter"));
        LoraSettings settings = LoraSettings.of(a.config());
        assertEquals(List.of("lm_head", "o_proj", "v_proj"), settings.targetModules());
        assertTrue(settings.output() && settings.rslora() && !settings.targets("model.layers.0.mlp.down_proj"));
        assertEquals(8f, settings.alpha(), "rsLoRA keeps the user's alpha; the scale rule changes");
        try (LlamaForCausalLM m = LlamaForCausalLM.load(fixture.resolve("model"), settings, TestDevices.jvm())) {
            m.loadAdapters(a.tensors());
            assertEquals(8f, m.adapterModules().get("lm_head").alpha());
            assertEquals(4f, m.adapterModules().get("lm_head").scale(), 1e-6);
        }
        try (LlamaForCausalLM m = LlamaForCausalLM.load(golden.resolve("patterns_q_v/model"),
                LoraSettings.of(PeftAdapters.read(golden.resolve("patterns_q_v/adapter")).config()), TestDevices.jvm())) {
            // rank_pattern {"layers.1.self_attn.v_proj": 2}, alpha_pattern {"q_proj": 12.0}, r 4, alpha 8
            assertEquals(2, m.adapterModules().get("model.layers.1.self_attn.v_proj").rank());
            assertEquals(4, m.adapterModules().get("model.layers.0.self_attn.v_proj").rank());
            assertEquals(12f, m.adapterModules().get("model.layers.1.self_attn.q_proj").alpha());
            assertEquals(8f, m.adapterModules().get("model.layers.1.self_attn.v_proj").alpha());
        }
        // Every fixture's adapter, PEFT-written (DoRA, all-linear, a regex, patterns, rsLoRA, lm_head), read and
        // written back: the same config and tensors.
        for (Path c : LlamaGoldenTest.cases()) {
            rewritesAsPeftWrote(c, tmp.resolve(c.getFileName().toString()));
        }
    }

    static void rewritesAsPeftWrote(Path fixture, Path out) throws IOException {
        PeftAdapters.Adapter a = PeftAdapters.read(fixture.resolve("adapter"));
        try (LlamaForCausalLM m = LlamaForCausalLM.load(fixture.resolve("model"), LoraSettings.of(a.config()), TestDevices.jvm())) {
            m.loadAdapters(a.tensors());
            m.savePeft(out, "../model");
            String ours = Files.readString(out.resolve(PeftAdapters.CONFIG));
            String theirs = Files.readString(fixture.resolve("adapter").resolve(PeftAdapters.CONFIG));
            // PEFT writes target_modules from a set (any order); everything else is byte for byte.
            assertEquals(normalizeTargets(theirs), normalizeTargets(ours), fixture.toString());
            assertEquals(JSON.readTree(theirs).size(), JSON.readTree(ours).size());
            PeftAdapters.Adapter back = PeftAdapters.read(out);
            assertEquals(a.config(), back.config());
            assertEquals(a.tensors().keySet(), back.tensors().keySet(), fixture.toString());
            for (String k : a.tensors().keySet()) {
                assertArrayEquals(a.tensors().get(k).data(), back.tensors().get(k).data(), k);
            }
        }
    }

    static String normalizeTargets(String json) throws IOException {
        ObjectNode n = (ObjectNode) JSON.readTree(json);
        if (n.get("target_modules").isTextual()) return json;  // a regex: one string
        List<String> t = new ArrayList<>();
        n.get("target_modules").forEach(x -> t.add(x.asText()));
        ArrayNode sorted = n.putArray("target_modules");
        new TreeSet<>(t).forEach(sorted::add);
        // Reformat the fixture's text with the new list in place, keeping its layout elsewhere.
        return json.replaceAll("(?s)\"target_modules\": \\[.*?\\]", "\"target_modules\": " + sorted);
    }

    @Test
    void unsupportedPeftFeaturesAreRefusedByName() throws IOException {
        JsonNode base = JSON.readTree(Files.readString(golden.resolve("qlora_mha/adapter").resolve(PeftAdapters.CONFIG)));
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("{\"bias\": \"all\"}", "bias 'all' is not supported");
        cases.put("{\"modules_to_save\": [\"lm_head\"]}", "modules_to_save");
        cases.put("{\"fan_in_fan_out\": true}", "fan_in_fan_out");
        cases.put("{\"use_qalora\": true}", "QA-LoRA (use_qalora) is not supported");
        cases.put("{\"lora_bias\": true}", "lora_bias is not supported");
        cases.put("{\"layers_to_transform\": [0]}", "layers_to_transform is not supported");
        cases.put("{\"exclude_modules\": [\"q_proj\"]}", "exclude_modules is not supported");
        cases.put("{\"alora_invocation_tokens\": [1, 2]}", "aLoRA (alora_invocation_tokens) is not supported");
        cases.put("{\"target_modules\": 3}", "target_modules must be a list of module names, \"all-linear\" or a regex");
        cases.put("{\"target_modules\": \"(q_proj\"}", "is not a regular expression");
        cases.put("{\"peft_type\": \"IA3\"}", "peft_type");
        for (Map.Entry<String, String> e : cases.entrySet()) {
            ObjectNode c = (ObjectNode) base.deepCopy();
            JSON.readTree(e.getKey()).properties().forEach(p -> c.set(p.getKey(), p.getValue()));
            String msg = assertThrows(IllegalArgumentException.class, () -> PeftAdapters.parseConfig(c, "cfg"), e.getKey()).getMessage();
            assertTrue(msg.startsWith("cfg: ") && msg.contains(e.getValue()), e.getKey() + " → " + msg);
        }
        ObjectNode all = ((ObjectNode) base.deepCopy()).put("target_modules", "all-linear");
        LoraSettings s = LoraSettings.of(PeftAdapters.parseConfig(all, "cfg"));
        assertTrue(s.targets("model.layers.1.mlp.down_proj") && s.targets("model.layers.0.self_attn.k_proj") && !s.output(),
                "all-linear: every projection, not the output layer");
        // A target that names no module of the model is refused when the model is built, as PEFT refuses it.
        ObjectNode embed = ((ObjectNode) base.deepCopy());
        embed.putArray("target_modules").add("embed_tokens");
        String msg = assertThrows(IllegalArgumentException.class, () -> LlamaForCausalLM.load(golden.resolve("qlora_mha/model"),
                LoraSettings.of(PeftAdapters.parseConfig(embed, "cfg")), TestDevices.jvm())).getMessage();
        assertTrue(msg.contains("'embed_tokens' names no linear layer"), msg);
    }

    @Test
    void torchtuneKeysLoadAsPeftKeysAndMergingKeepsTheLogits() throws IOException {
        Path fixture = golden.resolve("gqa4_llama3_mlp_sharded");
        PeftAdapters.Adapter a = PeftAdapters.read(fixture.resolve("adapter"));
        try (LlamaForCausalLM m = LlamaForCausalLM.load(fixture.resolve("model"), LoraSettings.of(a.config()), TestDevices.jvm())) {
            Map<String, Tensor> torchtune = new LinkedHashMap<>();
            a.tensors().forEach((k, v) -> {
                String[] pathParam = PeftAdapters.split(k);
                torchtune.put(AdapterKeys.torchtuneKey(pathParam[0], pathParam[1]), v);
            });
            assertTrue(torchtune.containsKey("layers.0.mlp.w1.lora_a.weight"), torchtune.keySet().toString());
            assertEquals(torchtune.keySet(), m.adapterStateDictTorchtune().keySet());
            m.loadAdapters(torchtune);
            Map<String, Tensor> sd = m.adapterStateDict();
            for (String k : a.tensors().keySet()) assertArrayEquals(a.tensors().get(k).data(), sd.get(k).data(), k);

            int[] ids = {1, 5, 9, 3, 7, 2};
            float[] adapted = m.logits(ids, 2, 3).data();
            try (LlamaForCausalLM merged = LlamaForCausalLM.fromWeights(m.config(), m.mergedWeights(),
                    LoraSettings.none(false), TestDevices.jvm())) {
                LlamaOpsTest.assertClose("merged logits", LlamaOpsTest.d(adapted), merged.logits(ids, 2, 3).data(), 1e-5);
            }
            Map<String, Tensor> extra = new LinkedHashMap<>(a.tensors());
            extra.put("base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight", Tensor.zeros(1, 1));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.loadAdapters(extra)).getMessage()
                    .contains("unexpected key 'base_model.model.model.layers.9"));
        }
    }

    @Test
    void dropoutActsInTrainingOnlyAndResumesWhereItStood() {
        LlamaConfig c = new LlamaConfig(64, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, false, 128, 1, 2, "float32");
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 4, 8f, 0.3f, false, false);
        int[] ids = {1, 5, 9, 3, 7, 2, 8, 4}, labels = {1, 5, 9, 3, 7, 2, 8, 4};
        try (LlamaForCausalLM a = LlamaForCausalLM.random(c, lora, 3, TestDevices.jvm());
             LlamaForCausalLM b = LlamaForCausalLM.random(c, lora, 3, TestDevices.jvm())) {
            // B starts at zero, so the adapters (and their dropout) do not change the loss: give B values first.
            Map<String, Tensor> sd = new LinkedHashMap<>(a.adapterStateDict());
            sd.replaceAll((k, t) -> {
                float[] v = t.data().clone();
                for (int i = 0; i < v.length; i++) v[i] = 0.05f * (float) Math.sin(i + k.length());
                return new Tensor(t.shape(), v);
            });
            a.loadAdapters(sd);
            b.loadAdapters(sd);
            double eval = a.loss(ids, labels, 2, 4);
            a.train(true);
            b.train(true);
            double first = a.forwardBackward(ids, labels, 2, 4, 1.0);
            assertTrue(first != eval, "dropout changes the training loss");
            b.resumeDropout(a.dropoutDraws());
            assertEquals(a.forwardBackward(ids, labels, 2, 4, 1.0), b.forwardBackward(ids, labels, 2, 4, 1.0),
                    "the resumed model draws the masks the first one draws");
            a.train(false);
            assertEquals(eval, a.loss(ids, labels, 2, 4), "eval mode: no dropout");
        }
    }
}
