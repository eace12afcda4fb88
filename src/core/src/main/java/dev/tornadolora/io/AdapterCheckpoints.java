package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA adapters on disk, in the two layouts the PyTorch world uses:
 * <ul>
 *   <li><b>torchtune</b>: one safetensors file keyed {@code <module>.lora_a.weight} [rank, in] and
 *       {@code <module>.lora_b.weight} [out, rank], as torchtune's {@code get_adapter_state_dict};</li>
 *   <li><b>PEFT</b>: a folder with {@code adapter_model.safetensors} keyed
 *       {@code base_model.model.<module>.lora_A.weight} / {@code lora_B.weight} and {@code adapter_config.json}
 *       ({@code peft_type} LORA, {@code r}, {@code lora_alpha}, {@code target_modules}, {@code lora_dropout},
 *       {@code bias} "none", with {@code rank_pattern}/{@code alpha_pattern} for modules that differ).</li>
 * </ul>
 * Loading fills existing {@link LoRALinear} modules (by name) and checks the keys as torchtune's
 * {@code validate_missing_and_unexpected_for_lora} does (see {@link LoraKeyValidation}); shapes are checked by
 * the layers. Every file is written atomically.
 */
public final class AdapterCheckpoints {
    public static final String PEFT_WEIGHTS = "adapter_model.safetensors";
    public static final String PEFT_CONFIG = "adapter_config.json";
    static final String PEFT_PREFIX = "base_model.model.";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private AdapterCheckpoints() {}

    // ---------------------------------------------------------------- keys

    /** {@code <module>.<param>}, or just {@code <param>} for the unnamed single layer. */
    public static String key(String module, String param) {
        return module.isEmpty() ? param : module + "." + param;
    }

    /** torchtune key → PEFT key: {@code fc1.lora_a.weight} → {@code base_model.model.fc1.lora_A.weight}. */
    public static String toPeftKey(String torchtuneKey) {
        return PEFT_PREFIX + torchtuneKey.replace("lora_a.", "lora_A.").replace("lora_b.", "lora_B.");
    }

    /** PEFT key → torchtune key; keys outside PEFT's naming are returned unchanged (and then reported). */
    public static String fromPeftKey(String peftKey) {
        if (!peftKey.startsWith(PEFT_PREFIX)) return peftKey;
        return peftKey.substring(PEFT_PREFIX.length()).replace("lora_A.", "lora_a.").replace("lora_B.", "lora_b.");
    }

    /** The adapters of the modules with torchtune keys (copies). */
    public static Map<String, Tensor> stateDict(Map<String, LoRALinear> modules) {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        modules.forEach((name, m) -> m.adapterStateDict().forEach((p, t) -> sd.put(key(name, p), t)));
        return sd;
    }

    /** Every key the modules have: base ({@code weight}, {@code bias}) and adapter ones. */
    public static List<String> modelKeys(Map<String, LoRALinear> modules) {
        List<String> keys = new ArrayList<>();
        modules.forEach((name, m) -> {
            keys.add(key(name, "weight"));
            if (m.useBias()) keys.add(key(name, "bias"));
            for (String p : m.adapterParams()) keys.add(key(name, p));
        });
        return keys;
    }

    // ---------------------------------------------------------------- torchtune layout

    /** Writes the adapters with torchtune keys; {@code metadata} (e.g. alpha, step) goes into the header. */
    public static void saveTorchtune(Path file, Map<String, LoRALinear> modules, Map<String, String> metadata)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "torchtune").metadata(metadata);
        stateDict(modules).forEach(w::f32);
        w.write(file);
    }

    /** Loads a torchtune-keyed adapter file into the modules, validating keys and shapes. */
    public static void loadTorchtune(Path file, Map<String, LoRALinear> modules) {
        SafeTensors st = SafeTensors.open(file);
        Map<String, Tensor> sd = new LinkedHashMap<>();
        for (String k : st.names()) sd.put(k, st.floats(k));
        load(sd, modules, file.toString());
    }

    // ---------------------------------------------------------------- PEFT layout

    /** Writes {@code dir/adapter_model.safetensors} and {@code dir/adapter_config.json}. */
    public static void savePeft(Path dir, Map<String, LoRALinear> modules) throws IOException {
        if (modules.isEmpty()) throw new IllegalArgumentException("no LoRA modules to save");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        stateDict(modules).forEach((k, t) -> w.f32(toPeftKey(k), t));
        Files.createDirectories(dir);
        w.write(dir.resolve(PEFT_WEIGHTS));
        AtomicFiles.writeString(dir.resolve(PEFT_CONFIG), JSON.writeValueAsString(peftConfig(modules)) + "\n");
    }

    /** PEFT's LoraConfig for these modules: the first module's r/alpha, patterns for the ones that differ. */
    static ObjectNode peftConfig(Map<String, LoRALinear> modules) {
        LoRALinear first = modules.values().iterator().next();
        ObjectNode c = JSON.createObjectNode();
        c.put("peft_type", "LORA");
        c.putNull("task_type");
        c.putNull("base_model_name_or_path");
        c.put("r", first.rank());
        c.put("lora_alpha", first.alpha());
        c.put("lora_dropout", first.dropout());
        c.put("bias", "none");
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.put("use_rslora", false);
        c.put("use_dora", false);
        var targets = c.putArray("target_modules");
        ObjectNode rankPattern = c.putObject("rank_pattern"), alphaPattern = c.putObject("alpha_pattern");
        modules.forEach((name, m) -> {
            if (name.isEmpty()) throw new IllegalArgumentException("PEFT layout needs named modules");
            targets.add(name);
            if (m.rank() != first.rank()) rankPattern.put(name, m.rank());
            if (m.alpha() != first.alpha()) alphaPattern.put(name, m.alpha());
        });
        c.putNull("modules_to_save");
        return c;
    }

    /** Loads a PEFT adapter folder into the modules, checking the config's r/lora_alpha against them. */
    public static void loadPeft(Path dir, Map<String, LoRALinear> modules) {
        Path config = dir.resolve(PEFT_CONFIG);
        JsonNode c;
        try {
            c = JSON.readTree(Files.readString(config));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(config + ": no such file (not a PEFT adapter folder)");
        } catch (IOException e) {
            throw new IllegalArgumentException(config + ": cannot read as JSON: " + e.getMessage());
        }
        if (c == null || !c.isObject()) throw new IllegalArgumentException(config + ": not a JSON object");
        if (!"LORA".equals(c.path("peft_type").asText())) {
            throw new IllegalArgumentException(config + ": peft_type is " + c.get("peft_type") + ", expected \"LORA\"");
        }
        if (c.path("use_dora").asBoolean(false) || c.path("use_rslora").asBoolean(false)) {
            throw new IllegalArgumentException(config + ": use_dora/use_rslora adapters are not supported");
        }
        modules.forEach((name, m) -> {
            int r = c.path("rank_pattern").path(name).asInt(requireNumber(c, "r", config).intValue());
            double alpha = c.path("alpha_pattern").path(name).asDouble(requireNumber(c, "lora_alpha", config).doubleValue());
            if (r != m.rank() || (float) alpha != m.alpha()) {
                throw new IllegalArgumentException(config + ": module " + name + " has r=" + r + ", lora_alpha=" + alpha
                        + " but the model's layer has rank=" + m.rank() + ", alpha=" + m.alpha());
            }
        });
        SafeTensors st = SafeTensors.open(dir.resolve(PEFT_WEIGHTS));
        Map<String, Tensor> sd = new LinkedHashMap<>();
        for (String k : st.names()) sd.put(fromPeftKey(k), st.floats(k));
        load(sd, modules, st.source());
    }

    private static Number requireNumber(JsonNode c, String field, Path config) {
        JsonNode v = c.get(field);
        if (v == null || !v.isNumber()) throw new IllegalArgumentException(config + ": missing or non-numeric '" + field + "'");
        return v.numberValue();
    }

    // ---------------------------------------------------------------- common

    /**
     * Loads an adapter state dict (torchtune keys) after validating its keys against the modules': every adapter
     * key of every module must be present, and nothing else (a base weight in an adapter file is unexpected).
     */
    public static void load(Map<String, Tensor> adapter, Map<String, LoRALinear> modules, String source) {
        List<String> modelKeys = modelKeys(modules);
        Set<String> missing = new LinkedHashSet<>(modelKeys);
        missing.removeAll(adapter.keySet());
        Set<String> unexpected = new LinkedHashSet<>(adapter.keySet());
        modelKeys.stream().filter(LoraKeyValidation::isLoraKey).forEach(unexpected::remove);
        try {
            LoraKeyValidation.validate(modelKeys, null, null, missing, unexpected);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
        modules.forEach((name, m) -> {
            for (Parameter p : m.parameters()) {
                String k = key(name, p.name());
                Tensor t = adapter.get(k);
                Shapes.requireEqual(source + ": tensor '" + k + "'", t.shape(), p.shape());
                m.load(p.name(), t);
            }
        });
    }
}
