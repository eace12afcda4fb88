package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The one reader and writer of PEFT adapter folders, for any model whose LoRA layers are named by their full
 * module path ({@code model.layers.0.self_attn.q_proj}, {@code fc1}):
 * <ul>
 *   <li>{@code adapter_model.safetensors}: F32 tensors keyed {@code base_model.model.<path>.lora_A.weight},
 *       {@code .lora_B.weight} and, for DoRA, {@code .lora_magnitude_vector} (PEFT 0.21's keys);</li>
 *   <li>{@code adapter_config.json}: PEFT 0.21's {@code LoraConfig} as {@code save_pretrained} writes it
 *       ({@code json.dumps(indent=2, sort_keys=True)}, every field), read back strictly, refusing by name what a
 *       {@link LoRALinear} cannot compute.</li>
 * </ul>
 * The key mapping between a layer's torchtune parameter names ({@code lora_a.weight}, {@code lora_b.weight},
 * {@code magnitude}) and PEFT's lives here and nowhere else.
 */
public final class PeftAdapters {
    /** The weights file of a PEFT adapter folder. */
    public static final String WEIGHTS = "adapter_model.safetensors";
    /** The config file of a PEFT adapter folder. */
    public static final String CONFIG = "adapter_config.json";
    /** What PEFT puts before a module's path ({@code PeftModel.base_model.model}). */
    public static final String PREFIX = "base_model.model.";
    /** The PEFT version whose format is written. */
    public static final String PEFT_VERSION = "0.21.0";

    /** torchtune parameter name → PEFT's suffix. */
    private static final Map<String, String> PARAM_TO_PEFT = Map.of(
            "lora_a.weight", "lora_A.weight", "lora_b.weight", "lora_B.weight", "magnitude", "lora_magnitude_vector");

    private PeftAdapters() {}

    // ---------------------------------------------------------------- keys

    /** {@code base_model.model.<modulePath>.lora_A.weight} for {@code lora_a.weight}, and so on. */
    public static String key(String modulePath, String param) {
        String p = PARAM_TO_PEFT.get(param);
        if (p == null) throw new IllegalArgumentException("no PEFT name for adapter parameter '" + param + "'");
        return PREFIX + modulePath + "." + p;
    }

    /** A PEFT key split into (module path, torchtune parameter name), or null when it is not an adapter key. */
    public static String[] split(String peftKey) {
        if (!peftKey.startsWith(PREFIX)) return null;
        String rest = peftKey.substring(PREFIX.length());
        for (Map.Entry<String, String> e : PARAM_TO_PEFT.entrySet()) {
            String suffix = "." + e.getValue();
            if (rest.endsWith(suffix) && rest.length() > suffix.length()) {
                return new String[] {rest.substring(0, rest.length() - suffix.length()), e.getKey()};
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- config

    /**
     * The part of PEFT's {@code LoraConfig} a LoRA layer can express.
     *
     * @param r            {@code r}
     * @param alpha        {@code lora_alpha}
     * @param dropout      {@code lora_dropout}
     * @param targets      {@code target_modules}
     * @param rslora       {@code use_rslora}: scale alpha/√r instead of alpha/r
     * @param dora         {@code use_dora}: DoRA's magnitude vector
     * @param rankPattern  {@code rank_pattern}: per-module r, keys matched as PEFT's {@code get_pattern_key}
     * @param alphaPattern {@code alpha_pattern}: per-module alpha, likewise
     * @param baseModel    {@code base_model_name_or_path} (may be null)
     * @param taskType     {@code task_type} ({@code CAUSAL_LM}, or null)
     */
    public record Config(int r, double alpha, double dropout, TargetModules targets, boolean rslora, boolean dora,
                         Map<String, Integer> rankPattern, Map<String, Double> alphaPattern, String baseModel,
                         String taskType) {
        public Config {
            rankPattern = rankPattern == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern));
            alphaPattern = alphaPattern == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern));
        }

        /** The module's r: PEFT's {@code rank_pattern.get(get_pattern_key(keys, path), r)}. */
        public int rankOf(String modulePath) {
            String k = patternKey(rankPattern.keySet(), modulePath);
            return k == null ? r : rankPattern.get(k);
        }

        /** The module's alpha, as {@link #rankOf}. */
        public double alphaOf(String modulePath) {
            String k = patternKey(alphaPattern.keySet(), modulePath);
            return k == null ? alpha : alphaPattern.get(k);
        }
    }

    /** PEFT's {@code get_pattern_key}: the first key for which {@code re.match(rf"(.*\.)?({key})$", path)}. */
    static String patternKey(Iterable<String> keys, String modulePath) {
        for (String k : keys) {
            if (Pattern.compile("(.*\\.)?(" + k + ")").matcher(modulePath).matches()) return k;
        }
        return null;
    }

    /** adapter_config.json, byte for byte as PEFT 0.21's {@code save_pretrained} writes this LoraConfig. */
    public static String configJson(Config s) {
        Map<String, Object> c = new TreeMap<>();
        String[] nulls = {"alora_invocation_tokens", "arrow_config", "auto_mapping", "corda_config", "eva_config",
                "exclude_modules", "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform",
                "lora_ga_config", "megatron_config", "modules_to_save", "monteclora_config", "revision",
                "target_parameters", "trainable_token_indices", "use_bdlora", "velora_config"};
        for (String n : nulls) c.put(n, null);
        Map<String, Object> alphas = new TreeMap<>(s.alphaPattern());
        c.put("alpha_pattern", alphas);
        c.put("base_model_name_or_path", s.baseModel());
        c.put("bias", "none");
        c.put("ensure_weight_tying", false);
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.put("loftq_config", Map.of());
        c.put("lora_alpha", s.alpha());
        c.put("lora_bias", false);
        c.put("lora_dropout", s.dropout());
        c.put("megatron_core", "megatron.core");
        c.put("peft_type", "LORA");
        c.put("peft_version", PEFT_VERSION);
        c.put("qalora_group_size", 16);
        c.put("r", s.r());
        c.put("rank_pattern", new TreeMap<String, Object>(s.rankPattern()));
        TargetModules t = s.targets();
        c.put("target_modules", t.names() != null ? t.names() : t.regex() != null ? t.regex() : TargetModules.ALL_LINEAR);
        c.put("task_type", s.taskType());
        c.put("use_dora", s.dora());
        c.put("use_qalora", false);
        c.put("use_rslora", s.rslora());
        StringBuilder sb = new StringBuilder();
        pythonJson(c, 0, sb);
        return sb.toString();
    }

    /** Python's {@code json.dumps(v, indent=2, sort_keys=True)} for the few types a config holds. */
    private static void pythonJson(Object v, int indent, StringBuilder sb) {
        String pad = "  ".repeat(indent + 1), end = "  ".repeat(indent);
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Integer i) {
            sb.append(i);
        } else if (v instanceof Double d) {
            sb.append(pythonFloat(d));
        } else if (v instanceof String s) {
            try {
                sb.append(new ObjectMapper().writeValueAsString(s));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append("{\n");
            int k = 0;
            for (Map.Entry<?, ?> e : new TreeMap<>(m).entrySet()) {
                sb.append(pad);
                pythonJson(e.getKey().toString(), indent + 1, sb);
                sb.append(": ");
                pythonJson(e.getValue(), indent + 1, sb);
                sb.append(++k < m.size() ? ",\n" : "\n");
            }
            sb.append(end).append('}');
        } else if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append("[\n");
            for (int i = 0; i < l.size(); i++) {
                sb.append(pad);
                pythonJson(l.get(i), indent + 1, sb);
                sb.append(i + 1 < l.size() ? ",\n" : "\n");
            }
            sb.append(end).append(']');
        } else {
            throw new IllegalArgumentException("cannot write " + v.getClass());
        }
    }

    /** The double a user means by a float: its shortest decimal (0.1f → 0.1, not 0.10000000149011612). */
    public static double decimal(float f) {
        return Double.parseDouble(Float.toString(f));
    }

    /** Python's repr of a float: the shortest round-trip digits, "8.0", "0.05", "0.0001", "1e-05". */
    static String pythonFloat(double d) {
        if (!Double.isFinite(d)) throw new IllegalArgumentException("not a finite number: " + d);
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal bd = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = bd.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - bd.scale();
        String sign = d < 0 ? "-" : "";
        if (exp >= -4 && exp < 16) {
            String plain = bd.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
    }

    /**
     * The {@link Config} an {@code adapter_config.json} describes, refusing by name every PEFT feature a LoRA layer
     * cannot compute.
     *
     * @param config the parsed JSON (read with {@link StrictJson})
     * @param where  names the file in messages
     */
    public static Config parseConfig(JsonNode config, String where) {
        JsonNode c = StrictJson.requireObject(config, where);
        String type = StrictJson.requireString(c, "peft_type", where);
        if (!"LORA".equals(type)) {
            throw new IllegalArgumentException(where + ": peft_type " + SafeText.quote(type) + " is not supported (only \"LORA\")");
        }
        if (c.hasNonNull("bias") && !"none".equals(StrictJson.requireString(c, "bias", where))) {
            throw new IllegalArgumentException(where + ": bias " + SafeText.quote(c.get("bias").textValue())
                    + " is not supported (only \"none\": no trained biases)");
        }
        refuseIfTrue(c, "fan_in_fan_out", "fan_in_fan_out (Conv1D weights)", where);
        refuseIfTrue(c, "lora_bias", "lora_bias", where);
        refuseIfTrue(c, "use_qalora", "QA-LoRA (use_qalora)", where);
        refuseIfSet(c, "modules_to_save", "modules_to_save (fully trained copies of modules)", where);
        refuseIfSet(c, "layers_to_transform", "layers_to_transform", where);
        refuseIfSet(c, "layer_replication", "layer_replication", where);
        refuseIfSet(c, "exclude_modules", "exclude_modules", where);
        refuseIfSet(c, "target_parameters", "target_parameters", where);
        refuseIfSet(c, "trainable_token_indices", "trainable_token_indices", where);
        refuseIfSet(c, "alora_invocation_tokens", "aLoRA (alora_invocation_tokens)", where);
        refuseIfSet(c, "arrow_config", "Arrow routing (arrow_config)", where);
        refuseIfSet(c, "kasa_config", "KaSA (kasa_config)", where);
        refuseIfSet(c, "velora_config", "VeLoRA (velora_config)", where);
        refuseIfSet(c, "monteclora_config", "MonteCLoRA (monteclora_config)", where);
        refuseIfSet(c, "use_bdlora", "BD-LoRA (use_bdlora)", where);
        refuseIfSet(c, "megatron_config", "megatron_config", where);
        int r = StrictJson.requireInt(c, "r", 1, Integer.MAX_VALUE, where);
        double alpha = StrictJson.requireDouble(c, "lora_alpha", where);
        double dropout = StrictJson.optionalDouble(c, "lora_dropout", 0, where);
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException(where + ": lora_dropout must be in [0, 1), got " + dropout);
        }
        boolean rslora = StrictJson.optionalBoolean(c, "use_rslora", false, where);
        boolean dora = StrictJson.optionalBoolean(c, "use_dora", false, where);
        Map<String, Integer> ranks = new LinkedHashMap<>();
        pattern(c, "rank_pattern", where).forEach((k, v) ->
                ranks.put(k, (int) StrictJson.exactLong(v, "rank_pattern." + k, 1, Integer.MAX_VALUE, where)));
        Map<String, Double> alphas = new LinkedHashMap<>();
        pattern(c, "alpha_pattern", where).forEach((k, v) -> {
            if (!v.isNumber()) {
                throw new IllegalArgumentException(where + ": alpha_pattern." + SafeText.of(k, 60) + " must be a number");
            }
            alphas.put(k, v.asDouble());
        });
        String base = c.hasNonNull("base_model_name_or_path") ? StrictJson.requireString(c, "base_model_name_or_path", where) : null;
        String task = c.hasNonNull("task_type") ? StrictJson.requireString(c, "task_type", where) : null;
        return new Config(r, alpha, dropout, targets(c, where), rslora, dora, ranks, alphas, base, task);
    }

    private static TargetModules targets(JsonNode c, String where) {
        JsonNode t = c.get("target_modules");
        try {
            if (t != null && t.isTextual()) return TargetModules.of(t.textValue());
            if (t != null && t.isArray()) {
                List<String> names = new ArrayList<>();
                for (JsonNode n : t) {
                    if (!n.isTextual()) {
                        throw new IllegalArgumentException("target_modules holds " + SafeText.of(n.toString(), 40)
                                + ", not a module name");
                    }
                    names.add(n.textValue());
                }
                return TargetModules.of(names);
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        throw new IllegalArgumentException(where + ": target_modules must be a list of module names, \"all-linear\""
                + " or a regex, but is " + (t == null ? "missing" : SafeText.of(t.toString(), 60)));
    }

    private static Map<String, JsonNode> pattern(JsonNode c, String field, String where) {
        JsonNode p = c.get(field);
        Map<String, JsonNode> out = new LinkedHashMap<>();
        if (p == null || p.isNull()) return out;
        if (!p.isObject()) throw new IllegalArgumentException(where + ": " + field + " is not a JSON object");
        p.properties().forEach(e -> {
            try {
                Pattern.compile(e.getKey());
            } catch (java.util.regex.PatternSyntaxException x) {
                throw new IllegalArgumentException(where + ": " + field + " key " + SafeText.quote(e.getKey())
                        + " is not a regular expression");
            }
            out.put(e.getKey(), e.getValue());
        });
        return out;
    }

    private static void refuseIfTrue(JsonNode c, String field, String what, String where) {
        if (StrictJson.optionalBoolean(c, field, false, where)) {
            throw new IllegalArgumentException(where + ": " + what + " is not supported");
        }
    }

    private static void refuseIfSet(JsonNode c, String field, String what, String where) {
        JsonNode v = c.get(field);
        if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty()) && !(v.isBoolean() && !v.booleanValue())) {
            throw new IllegalArgumentException(where + ": " + what + " is not supported, got " + field + " = "
                    + SafeText.of(v.toString(), 80));
        }
    }

    // ---------------------------------------------------------------- folders

    /** A PEFT adapter as read: its config and its tensors under PEFT keys. */
    public record Adapter(Config config, Map<String, Tensor> tensors) {}

    /** Reads and validates a PEFT adapter folder (the tensors are not yet matched to a model: see {@link #load}). */
    public static Adapter read(Path dir) {
        Path config = dir.resolve(CONFIG);
        if (!Files.exists(config) && !Files.isSymbolicLink(config)) {
            throw new IllegalArgumentException(config + ": no such file (not a PEFT adapter folder)");
        }
        return read(config.toString(), StrictJson.read(config), SafeTensors.open(dir.resolve(WEIGHTS)));
    }

    /** As {@link #read(Path)} for a config already parsed and weights already opened. */
    public static Adapter read(String where, JsonNode config, SafeTensors weights) {
        Config c = parseConfig(config, where);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (String k : weights.names()) tensors.put(k, weights.floats(k));
        } catch (SafeTensorsException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        return new Adapter(c, tensors);
    }

    /**
     * Writes {@code dir/adapter_model.safetensors} (F32, PEFT keys, in the modules' order) and
     * {@code dir/adapter_config.json}, each atomically.
     *
     * @param modules  the LoRA layers by full module path
     * @param metadata more header entries of the weights file (PEFT ignores them)
     */
    public static void write(Path dir, Config config, Map<String, LoRALinear> modules, Map<String, String> metadata)
            throws IOException {
        if (modules.isEmpty()) throw new IllegalArgumentException("no LoRA modules to save");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(metadata).metadata("format", "pt");
        stateDict(modules).forEach(w::f32);
        Files.createDirectories(dir);
        w.write(dir.resolve(WEIGHTS));
        AtomicFiles.writeString(dir.resolve(CONFIG), configJson(config));
    }

    /** The adapters of the modules under PEFT keys (copies), in the modules' order. */
    public static Map<String, Tensor> stateDict(Map<String, LoRALinear> modules) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        modules.forEach((path, l) -> l.adapterStateDict().forEach((p, t) -> out.put(key(path, p), t)));
        return out;
    }

    /**
     * Checks that {@code tensors} (PEFT keys) hold exactly the adapters of {@code modules}, with their shapes, and
     * then loads them; nothing is loaded when anything is wrong.
     *
     * @param what names the adapter and the model in messages, e.g. "adapter does not fit the model"
     */
    public static void load(Map<String, Tensor> tensors, Map<String, LoRALinear> modules, String what) {
        List<String> missing = new ArrayList<>(), unexpected = new ArrayList<>();
        for (Map.Entry<String, LoRALinear> m : modules.entrySet()) {
            for (Parameter p : m.getValue().parameters()) {
                if (!tensors.containsKey(key(m.getKey(), p.name()))) missing.add(key(m.getKey(), p.name()));
            }
        }
        for (String k : tensors.keySet()) {
            String[] s = split(k);
            LoRALinear l = s == null ? null : modules.get(s[0]);
            if (l == null || l.parameters().stream().noneMatch(p -> p.name().equals(s[1]))) unexpected.add(k);
        }
        if (!unexpected.isEmpty()) {
            throw new IllegalArgumentException(what + ": unexpected key " + SafeText.quote(unexpected.get(0))
                    + (unexpected.size() > 1 ? " and " + (unexpected.size() - 1) + " more" : "")
                    + " (the model's LoRA modules: " + SafeText.of(String.join(", ", modules.keySet()), 160) + ")");
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(what + ": missing key " + SafeText.quote(missing.get(0))
                    + (missing.size() > 1 ? " and " + (missing.size() - 1) + " more" : ""));
        }
        modules.forEach((path, l) -> {
            for (Parameter p : l.parameters()) {
                String k = key(path, p.name());
                Shapes.requireEqual(what + ": tensor " + SafeText.quote(k), tensors.get(k).shape(), p.shape());
            }
        });
        modules.forEach((path, l) -> {
            for (Parameter p : l.parameters()) l.load(p.name(), tensors.get(key(path, p.name())));
        });
    }
}
