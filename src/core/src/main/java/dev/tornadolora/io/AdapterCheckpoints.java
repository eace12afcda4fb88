package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.nn.DoRA;
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
    /** The weights file of a PEFT adapter folder ({@link PeftAdapters#WEIGHTS}). */
    public static final String PEFT_WEIGHTS = PeftAdapters.WEIGHTS;
    /** The config file of a PEFT adapter folder ({@link PeftAdapters#CONFIG}). */
    public static final String PEFT_CONFIG = PeftAdapters.CONFIG;

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
        for (String p : List.of("lora_a.weight", "lora_b.weight", DoRA.MAGNITUDE)) {
            if (torchtuneKey.endsWith("." + p)) {
                return PeftAdapters.key(torchtuneKey.substring(0, torchtuneKey.length() - p.length() - 1), p);
            }
        }
        throw new IllegalArgumentException("not an adapter key: " + SafeText.quote(torchtuneKey));
    }

    /**
     * PEFT key → torchtune key.
     *
     * @param peftKey a PEFT adapter key
     * @return the torchtune key; a key outside PEFT's naming unchanged (the loaders then report it)
     */
    public static String fromPeftKey(String peftKey) {
        String[] s = PeftAdapters.split(peftKey);
        return s == null ? peftKey : key(s[0], s[1]);
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
        PeftAdapters.write(dir, peftConfig(modules), modules, metadata);
    }

    /** PEFT's LoraConfig for these modules: the first module's r/alpha, patterns for the ones that differ. */
    static PeftAdapters.Config peftConfig(Map<String, LoRALinear> modules) {
        LoRALinear first = modules.values().iterator().next();
        Map<String, Integer> ranks = new LinkedHashMap<>();
        Map<String, Double> alphas = new LinkedHashMap<>();
        modules.forEach((name, m) -> {
            if (name.isEmpty()) throw new IllegalArgumentException("PEFT layout needs named modules");
            if (m.rank() != first.rank()) ranks.put(name, m.rank());
            if (m.alpha() != first.alpha()) alphas.put(name, PeftAdapters.decimal(m.alpha()));
            if (m.rslora() != first.rslora() || m.dora() != first.dora()) {
                throw new IllegalArgumentException("PEFT layout: module " + SafeText.quote(name) + " differs from "
                        + "the first in use_rslora or use_dora (one LoraConfig holds one of each)");
            }
        });
        // One lora_dropout for all (the first module's), as before: dropout does not change what the adapter computes.
        return new PeftAdapters.Config(first.rank(), PeftAdapters.decimal(first.alpha()), PeftAdapters.decimal(first.dropout()),
                TargetModules.of(List.copyOf(modules.keySet())), first.rslora(), first.dora(), ranks, alphas, null, null);
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
        PeftAdapters.Adapter a = PeftAdapters.read(where, config, st);
        PeftAdapters.Config c = a.config();
        requireTargets(c.targets(), modules.keySet(), where);
        modules.forEach((name, m) -> {
            int mr = c.rankOf(name);
            double ma = c.alphaOf(name);
            if (mr != m.rank() || (float) ma != m.alpha()) {
                throw new IllegalArgumentException(where + ": module " + SafeText.quote(name) + " has r=" + mr
                        + ", lora_alpha=" + ma + " but the model's layer has rank=" + m.rank() + ", alpha=" + m.alpha());
            }
            if ((float) c.dropout() != m.dropout()) {
                throw new IllegalArgumentException(where + ": lora_dropout " + c.dropout() + " but the model's layer "
                        + SafeText.quote(name) + " has dropout " + m.dropout());
            }
            if (c.rslora() != m.rslora() || c.dora() != m.dora()) {
                throw new IllegalArgumentException(where + ": use_rslora " + c.rslora() + ", use_dora " + c.dora()
                        + " but the model's layer " + SafeText.quote(name) + " has use_rslora " + m.rslora()
                        + ", use_dora " + m.dora());
            }
        });
        Map<String, Tensor> sd = new LinkedHashMap<>();
        a.tensors().forEach((k, t) -> sd.put(fromPeftKey(k), t));
        load(sd, modules, st.source());
    }

    /** {@code target_modules} must select exactly the modules loaded. */
    private static void requireTargets(TargetModules t, Set<String> modules, String where) {
        Set<String> absent = new TreeSet<>();
        for (String m : modules) if (!t.matches(m, false)) absent.add(m);
        Set<String> extra = new TreeSet<>();
        if (t.names() != null) {
            for (String n : t.names()) {
                if (modules.stream().noneMatch(m -> m.equals(n) || m.endsWith("." + n))) extra.add(n);
            }
        }
        if (!extra.isEmpty() || !absent.isEmpty()) {
            throw new IllegalArgumentException(where + ": target_modules does not match the model's LoRA modules"
                    + (extra.isEmpty() ? "" : "; not in the model: " + SafeText.of(String.join(", ", extra)))
                    + (absent.isEmpty() ? "" : "; missing: " + SafeText.of(String.join(", ", absent))));
        }
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
