package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsException;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * PEFT adapter folders for a Llama model: {@code adapter_config.json} as PEFT 0.21's {@code save_pretrained}
 * writes it (sorted keys, two-space indent) and {@code adapter_model.safetensors} with keys
 * {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} …, F32. Reading accepts PEFT keys and
 * torchtune's Llama keys, and refuses by name what LoRALinear cannot express: {@code bias} other than "none",
 * {@code modules_to_save}, DoRA ({@code use_dora}), {@code fan_in_fan_out}, per-module rank or alpha patterns,
 * {@code layers_to_transform}, LoRA biases, and target modules outside q/k/v/o, the whole MLP and lm_head.
 */
public final class PeftAdapterIO {
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";

    /** A PEFT adapter as read: its settings (quantizeBase false: not PEFT's to say) and tensors under PEFT keys. */
    public record Adapter(LoraSettings settings, Map<String, Tensor> tensors) {}

    private PeftAdapterIO() {}

    /** Writes {@code dir/adapter_model.safetensors} and {@code dir/adapter_config.json}, each atomically. */
    public static void write(Path dir, LlamaForCausalLM m, String baseModelNameOrPath) throws IOException {
        Map<String, Tensor> sd = m.adapterStateDict();
        if (sd.isEmpty()) throw new IllegalArgumentException("the model has no adapters to write");
        Files.createDirectories(dir);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        sd.forEach(w::f32);
        w.write(dir.resolve(WEIGHTS));
        AtomicFiles.writeString(dir.resolve(CONFIG), configJson(m.lora(), baseModelNameOrPath));
    }

    /** adapter_config.json for these settings, byte for byte as PEFT 0.21 writes a LoraConfig. */
    public static String configJson(LoraSettings s, String baseModelNameOrPath) {
        Map<String, Object> c = new TreeMap<>();
        String[] nulls = {"alora_invocation_tokens", "arrow_config", "auto_mapping", "corda_config", "eva_config",
                "exclude_modules", "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform",
                "lora_ga_config", "megatron_config", "modules_to_save", "monteclora_config", "revision",
                "target_parameters", "trainable_token_indices", "use_bdlora", "velora_config"};
        for (String n : nulls) c.put(n, null);
        c.put("alpha_pattern", Map.of());
        c.put("base_model_name_or_path", baseModelNameOrPath);
        c.put("bias", "none");
        c.put("ensure_weight_tying", false);
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.put("loftq_config", Map.of());
        c.put("lora_alpha", (double) s.alpha());
        c.put("lora_bias", false);
        c.put("lora_dropout", (double) s.dropout());
        c.put("megatron_core", "megatron.core");
        c.put("peft_type", "LORA");
        c.put("peft_version", "0.21.0");
        c.put("qalora_group_size", 16);
        c.put("r", s.rank());
        c.put("rank_pattern", Map.of());
        c.put("target_modules", s.targetModules());
        c.put("task_type", "CAUSAL_LM");
        c.put("use_dora", false);
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

    /** Python's repr of a float: the shortest round-trip digits, "8.0", "0.05", "0.0001", "1e-05". */
    static String pythonFloat(double d) {
        if (!Double.isFinite(d)) throw new IllegalArgumentException("not a finite number: " + d);
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        java.math.BigDecimal bd = new java.math.BigDecimal(Double.toString(d)).stripTrailingZeros();
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

    // ---------------------------------------------------------------- reading

    /** Reads and validates a PEFT adapter folder. */
    public static Adapter read(Path dir) {
        Path config = dir.resolve(CONFIG);
        if (!Files.exists(config) && !Files.isSymbolicLink(config)) {
            throw new IllegalArgumentException(config + ": no such file (not a PEFT adapter folder)");
        }
        JsonNode c = StrictJson.read(config);
        LoraSettings settings;
        try {
            settings = settings(c);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config + ": " + e.getMessage(), e);
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            SafeTensors st = SafeTensors.open(dir.resolve(WEIGHTS));
            for (String k : st.names()) tensors.put(k, st.floats(k));
        } catch (SafeTensorsException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        return new Adapter(settings, AdapterKeys.toPeft(tensors));
    }

    /** The LoraSettings a PEFT LoraConfig describes, refusing what they cannot express. */
    static LoraSettings settings(JsonNode c) {
        if (c == null || !c.isObject()) throw new IllegalArgumentException("not a JSON object");
        String type = c.path("peft_type").asText("");
        if (!type.equals("LORA")) {
            throw new IllegalArgumentException("peft_type " + c.get("peft_type") + " is not supported (only \"LORA\")");
        }
        if (c.hasNonNull("bias") && !c.get("bias").asText().equals("none")) {
            throw new IllegalArgumentException("bias " + c.get("bias") + " is not supported (only \"none\")");
        }
        refuseIfSet(c, "modules_to_save", "modules_to_save (fully trained copies of modules)");
        refuseIfTrue(c, "use_dora", "DoRA (use_dora)");
        refuseIfTrue(c, "fan_in_fan_out", "fan_in_fan_out");
        refuseIfTrue(c, "lora_bias", "lora_bias");
        refuseIfTrue(c, "use_qalora", "QA-LoRA (use_qalora)");
        refuseIfSet(c, "rank_pattern", "rank_pattern (per-module ranks)");
        refuseIfSet(c, "alpha_pattern", "alpha_pattern (per-module alphas)");
        refuseIfSet(c, "layers_to_transform", "layers_to_transform");
        refuseIfSet(c, "layer_replication", "layer_replication");
        refuseIfSet(c, "exclude_modules", "exclude_modules");
        refuseIfSet(c, "target_parameters", "target_parameters");
        refuseIfSet(c, "trainable_token_indices", "trainable_token_indices");
        JsonNode r = c.get("r");
        if (r == null || !r.canConvertToInt() || !r.isIntegralNumber() || r.asInt() <= 0) {
            throw new IllegalArgumentException("r must be a positive integer, got " + r);
        }
        JsonNode alpha = c.get("lora_alpha");
        if (alpha == null || !alpha.isNumber()) throw new IllegalArgumentException("lora_alpha must be a number, got " + alpha);
        JsonNode dropout = c.get("lora_dropout");
        if (dropout != null && !dropout.isNull() && !dropout.isNumber()) {
            throw new IllegalArgumentException("lora_dropout must be a number, got " + dropout);
        }
        JsonNode rs = c.get("use_rslora");
        if (rs != null && !rs.isNull() && !rs.isBoolean()) throw new IllegalArgumentException("use_rslora must be true or false");
        Set<String> targets = new HashSet<>();
        JsonNode t = c.get("target_modules");
        if (t != null && t.isTextual()) {
            if (!t.asText().equals("all-linear")) {
                throw new IllegalArgumentException("target_modules \"" + t.asText()
                        + "\" is not supported (a list of module names or \"all-linear\")");
            }
            targets.addAll(LoraSettings.ATTN_MODULES);
            targets.addAll(LoraSettings.MLP_MODULES);
        } else if (t != null && t.isArray()) {
            for (JsonNode m : t) {
                if (!m.isTextual()) throw new IllegalArgumentException("target_modules holds a non-string " + m);
                targets.add(m.asText());
            }
        } else {
            throw new IllegalArgumentException("target_modules must be a list of module names, got " + t);
        }
        Set<String> attn = new HashSet<>();
        List<String> mlp = new ArrayList<>();
        boolean output = false;
        for (String m : targets) {
            if (LoraSettings.ATTN_MODULES.contains(m)) attn.add(m);
            else if (LoraSettings.MLP_MODULES.contains(m)) mlp.add(m);
            else if (m.equals(LoraSettings.OUTPUT_MODULE)) output = true;
            else throw new IllegalArgumentException("target module '" + m + "' is not supported (supported: "
                    + LoraSettings.ATTN_MODULES + ", all of " + LoraSettings.MLP_MODULES + ", lm_head)");
        }
        if (!mlp.isEmpty() && mlp.size() != LoraSettings.MLP_MODULES.size()) {
            throw new IllegalArgumentException("target_modules names only " + mlp.stream().sorted().toList()
                    + " of the MLP; LoRA on the MLP covers all of " + LoraSettings.MLP_MODULES + " (apply_lora_to_mlp)");
        }
        return new LoraSettings(attn, !mlp.isEmpty(), output, r.asInt(), (float) alpha.asDouble(),
                dropout == null || dropout.isNull() ? 0f : (float) dropout.asDouble(),
                rs != null && rs.asBoolean(false), false);
    }

    private static void refuseIfTrue(JsonNode c, String field, String what) {
        if (c.path(field).asBoolean(false)) throw new IllegalArgumentException(what + " is not supported");
    }

    private static void refuseIfSet(JsonNode c, String field, String what) {
        JsonNode v = c.get(field);
        if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty())) {
            throw new IllegalArgumentException(what + " is not supported, got " + field + " = " + abbreviate(v));
        }
    }

    private static String abbreviate(JsonNode v) {
        String s = v.toString();
        return s.length() <= 80 ? s : s.substring(0, 80) + "...";
    }
}
