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
import java.util.TreeSet;

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
    /** The weights file of a PEFT adapter folder. */
    public static final String PEFT_WEIGHTS = "adapter_model.safetensors";
    /** The config file of a PEFT adapter folder (PEFT's {@code LoraConfig} as JSON). */
    public static final String PEFT_CONFIG = "adapter_config.json";
    static final String PEFT_PREFIX = "base_model.model.";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private AdapterCheckpoints() {}

    // ---------------------------------------------------------------- keys

    /**
     * A state-dict key.
     *
     * @param module the module's name; empty for the unnamed single layer
     * @param param  the parameter's name, e.g. {@code lora_a.weight}
     * @return {@code <module>.<param>}, or just {@code <param>} for the unnamed single layer
     */
    public static String key(String module, String param) {
        return module.isEmpty() ? param : module + "." + param;
    }

    /**
     * torchtune key → PEFT key: {@code fc1.lora_a.weight} → {@code base_model.model.fc1.lora_A.weight}.
     *
     * @param torchtuneKey a torchtune adapter key
     * @return the PEFT key of the same tensor
     */
    public static String toPeftKey(String torchtuneKey) {
        return PEFT_PREFIX + torchtuneKey.replace("lora_a.", "lora_A.").replace("lora_b.", "lora_B.");
    }

    /**
     * PEFT key → torchtune key.
     *
     * @param peftKey a PEFT adapter key
     * @return the torchtune key; a key outside PEFT's naming unchanged (the loaders then report it)
     */
    public static String fromPeftKey(String peftKey) {
        if (!peftKey.startsWith(PEFT_PREFIX)) return peftKey;
        return peftKey.substring(PEFT_PREFIX.length()).replace("lora_A.", "lora_a.").replace("lora_B.", "lora_b.");
    }

    /**
     * The adapters of the modules.
     *
     * @param modules the LoRA layers by name
     * @return copies of their adapters, by torchtune key, in the modules' order
     */
    public static Map<String, Tensor> stateDict(Map<String, LoRALinear> modules) {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        modules.forEach((name, m) -> m.adapterStateDict().forEach((p, t) -> sd.put(key(name, p), t)));
        return sd;
    }

    /**
     * Every key the modules have.
     *
     * @param modules the LoRA layers by name
     * @return their base ({@code weight}, {@code bias}) and adapter keys
     */
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

    /**
     * Writes the adapters with torchtune keys, atomically.
     *
     * @param file     the safetensors file to write
     * @param modules  the LoRA layers by name
     * @param metadata header metadata, e.g. alpha and step
     * @throws IOException when the file cannot be written
     */
    public static void saveTorchtune(Path file, Map<String, LoRALinear> modules, Map<String, String> metadata)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "torchtune").metadata(metadata);
        stateDict(modules).forEach(w::f32);
        w.write(file);
    }

    /**
     * Loads a torchtune-keyed adapter file into the modules, validating keys and shapes.
     *
     * @param file    the safetensors file
     * @param modules the LoRA layers by name, whose adapters are replaced
     */
    public static void loadTorchtune(Path file, Map<String, LoRALinear> modules) {
        SafeTensors st = SafeTensors.open(file);
        Map<String, Tensor> sd = new LinkedHashMap<>();
        for (String k : st.names()) sd.put(k, st.floats(k));
        load(sd, modules, file.toString());
    }

    // ---------------------------------------------------------------- PEFT layout

    /**
     * Writes a PEFT adapter folder: {@code dir/adapter_model.safetensors} and {@code dir/adapter_config.json}.
     *
     * @param dir     the folder, created when missing
     * @param modules the LoRA layers by name (the names become PEFT's {@code target_modules})
     * @throws IOException when a file cannot be written
     */
    public static void savePeft(Path dir, Map<String, LoRALinear> modules) throws IOException {
        savePeft(dir, modules, Map.of());
    }

    /**
     * As {@link #savePeft(Path, Map)}, with {@code metadata} also in the weights file's header (PEFT ignores it).
     *
     * @param dir      the PEFT adapter folder
     * @param modules  the LoRA modules by name
     * @param metadata more header entries for {@code adapter_model.safetensors} (a run identity, ...)
     * @throws IOException when writing fails
     */
    public static void savePeft(Path dir, Map<String, LoRALinear> modules, Map<String, String> metadata)
            throws IOException {
        if (modules.isEmpty()) throw new IllegalArgumentException("no LoRA modules to save");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(metadata).metadata("format", "pt");
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

    /**
     * Loads a PEFT adapter folder into the modules, checking the config's r/lora_alpha against them.
     *
     * @param dir     the folder holding adapter_model.safetensors and adapter_config.json
     * @param modules the LoRA layers by name, whose adapters are replaced
     */
    public static void loadPeft(Path dir, Map<String, LoRALinear> modules) {
        Path config = dir.resolve(PEFT_CONFIG);
        if (!Files.exists(config)) {
            throw new IllegalArgumentException(config + ": no such file (not a PEFT adapter folder)");
        }
        JsonNode c = StrictJson.read(config);
        loadPeft(config.toString(), c, SafeTensors.open(dir.resolve(PEFT_WEIGHTS)), modules);
    }

    /**
     * As {@link #loadPeft(Path, Map)} for a config already parsed (strictly, {@link StrictJson}) and weights already
     * opened.
     *
     * @param where   names the config in messages
     * @param config  the parsed {@code adapter_config.json}
     * @param st      {@code adapter_model.safetensors}
     * @param modules the model's LoRA modules by name, loaded in place
     * @throws IllegalArgumentException naming the file and the field or key that does not match the model
     */
    public static void loadPeft(String where, JsonNode config, SafeTensors st, Map<String, LoRALinear> modules) {
        JsonNode c = StrictJson.requireObject(config, where);
        String type = StrictJson.requireString(c, "peft_type", where);
        if (!"LORA".equals(type)) {
            throw new IllegalArgumentException(where + ": peft_type is " + SafeText.quote(type) + ", expected \"LORA\"");
        }
        if (StrictJson.optionalBoolean(c, "use_dora", false, where) || StrictJson.optionalBoolean(c, "use_rslora", false, where)) {
            throw new IllegalArgumentException(where + ": use_dora/use_rslora adapters are not supported");
        }
        if (c.hasNonNull("bias") && !"none".equals(StrictJson.requireString(c, "bias", where))) {
            throw new IllegalArgumentException(where + ": bias " + SafeText.quote(c.get("bias").textValue())
                    + " is not supported (only \"none\": no trained biases)");
        }
        if (StrictJson.optionalBoolean(c, "fan_in_fan_out", false, where)) {
            throw new IllegalArgumentException(where + ": fan_in_fan_out adapters (Conv1D weights) are not supported");
        }
        int r = StrictJson.requireInt(c, "r", 1, Integer.MAX_VALUE, where);
        double alpha = StrictJson.requireDouble(c, "lora_alpha", where);
        double dropout = StrictJson.optionalDouble(c, "lora_dropout", 0, where);
        requireTargets(c, modules.keySet(), where);
        JsonNode ranks = pattern(c, "rank_pattern", modules.keySet(), where);
        JsonNode alphas = pattern(c, "alpha_pattern", modules.keySet(), where);
        modules.forEach((name, m) -> {
            int mr = ranks.has(name) ? (int) StrictJson.exactLong(ranks.get(name), "rank_pattern." + name, 1,
                    Integer.MAX_VALUE, where) : r;
            double ma = StrictJson.optionalDouble(alphas, name, alpha, where + ": alpha_pattern");
            if (mr != m.rank() || (float) ma != m.alpha()) {
                throw new IllegalArgumentException(where + ": module " + SafeText.quote(name) + " has r=" + mr
                        + ", lora_alpha=" + ma + " but the model's layer has rank=" + m.rank() + ", alpha=" + m.alpha());
            }
            if ((float) dropout != m.dropout()) {
                throw new IllegalArgumentException(where + ": lora_dropout " + dropout + " but the model's layer "
                        + SafeText.quote(name) + " has dropout " + m.dropout());
            }
        });
        Map<String, Tensor> sd = new LinkedHashMap<>();
        for (String k : st.names()) sd.put(fromPeftKey(k), st.floats(k));
        load(sd, modules, st.source());
    }

    /** {@code target_modules} must name exactly the modules loaded (a list of names; PEFT's regex form is refused). */
    private static void requireTargets(JsonNode c, Set<String> modules, String where) {
        JsonNode t = c.get("target_modules");
        if (t == null || !t.isArray()) {
            throw new IllegalArgumentException(where + ": target_modules must be a list of module names but is "
                    + (t == null ? "missing" : SafeText.of(t.toString(), 60)));
        }
        Set<String> targets = new TreeSet<>();
        for (JsonNode n : t) {
            if (!n.isTextual()) {
                throw new IllegalArgumentException(where + ": target_modules holds " + SafeText.of(n.toString(), 40)
                        + ", not a module name");
            }
            targets.add(n.textValue());
        }
        if (!targets.equals(new TreeSet<>(modules))) {
            Set<String> extra = new TreeSet<>(targets), absent = new TreeSet<>(modules);
            extra.removeAll(modules);
            absent.removeAll(targets);
            throw new IllegalArgumentException(where + ": target_modules does not match the model's LoRA modules"
                    + (extra.isEmpty() ? "" : "; not in the model: " + SafeText.of(String.join(", ", extra)))
                    + (absent.isEmpty() ? "" : "; missing: " + SafeText.of(String.join(", ", absent))));
        }
    }

    /** {@code rank_pattern} / {@code alpha_pattern}: an object (or absent) whose keys are module names. */
    private static JsonNode pattern(JsonNode c, String field, Set<String> modules, String where) {
        JsonNode p = c.get(field);
        if (p == null || p.isNull()) return JSON.createObjectNode();
        if (!p.isObject()) throw new IllegalArgumentException(where + ": " + field + " is not a JSON object");
        p.fieldNames().forEachRemaining(k -> {
            if (!modules.contains(k)) {
                throw new IllegalArgumentException(where + ": " + field + " names " + SafeText.quote(k)
                        + ", not one of the model's LoRA modules (patterns are not supported)");
            }
        });
        return p;
    }

    // ---------------------------------------------------------------- common

    /**
     * Loads an adapter state dict (torchtune keys) after validating its keys against the modules': every adapter
     * key of every module must be present, and nothing else (a base weight in an adapter file is unexpected).
     *
     * @param adapter the tensors by torchtune key
     * @param modules the LoRA layers by name, whose adapters are replaced
     * @param source  names where the tensors came from, in messages
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
                Shapes.requireEqual(source + ": tensor " + SafeText.quote(k) + "", t.shape(), p.shape());
                m.load(p.name(), t);
            }
        });
    }
}
