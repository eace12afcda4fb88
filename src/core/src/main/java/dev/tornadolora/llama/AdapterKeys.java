package dev.tornadolora.llama;

import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Adapter key names: PEFT's ({@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight},
 * {@code base_model.model.lm_head.lora_B.weight}) and torchtune's for its Llama
 * ({@code layers.0.attn.q_proj.lora_a.weight}; o_proj is {@code attn.output_proj}, gate/down/up are
 * {@code mlp.w1/w2/w3}, lm_head is {@code output}; DoRA's magnitude is {@code .magnitude} as in torchtune's
 * {@code DoRALinear}, PEFT's {@code .lora_magnitude_vector}).
 */
final class AdapterKeys {
    private static final Pattern TORCHTUNE = Pattern.compile(
            "layers\\.(\\d+)\\.(attn\\.(q_proj|k_proj|v_proj|output_proj)|mlp\\.(w1|w2|w3))\\.(lora_a\\.weight|lora_b\\.weight|magnitude)");
    private static final Pattern TORCHTUNE_OUTPUT = Pattern.compile("output\\.(lora_a\\.weight|lora_b\\.weight|magnitude)");
    private static final Pattern MODULE_PATH = Pattern.compile("model\\.layers\\.(\\d+)\\.(self_attn|mlp)\\.(\\w+)");

    private AdapterKeys() {}

    /** The keys in PEFT naming: PEFT keys unchanged, torchtune keys renamed. */
    static Map<String, Tensor> toPeft(Map<String, Tensor> keys) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        keys.forEach((k, v) -> {
            String p = peftOf(k);
            if (out.put(p, v) != null) {
                throw new IllegalArgumentException("adapter key '" + k + "' names the same tensor as another key ('" + p + "')");
            }
        });
        return out;
    }

    /** The PEFT key of a torchtune key; other keys unchanged. */
    static String peftOf(String key) {
        Matcher m = TORCHTUNE.matcher(key);
        if (m.matches()) {
            String proj = m.group(3) != null
                    ? (m.group(3).equals("output_proj") ? "o_proj" : m.group(3))
                    : switch (m.group(4)) { case "w1" -> "gate_proj"; case "w2" -> "down_proj"; default -> "up_proj"; };
            return PeftAdapters.key(LlamaForCausalLM.modulePath(Integer.parseInt(m.group(1)), proj), m.group(5));
        }
        Matcher o = TORCHTUNE_OUTPUT.matcher(key);
        if (o.matches()) {
            return PeftAdapters.key(LoraSettings.OUTPUT_MODULE, o.group(1));
        }
        return key;
    }

    /** torchtune's key for a PEFT module path and a parameter ({@code lora_a.weight}, {@code magnitude}). */
    static String torchtuneKey(String modulePath, String param) {
        if (modulePath.equals(LoraSettings.OUTPUT_MODULE)) return "output." + param;
        Matcher m = MODULE_PATH.matcher(modulePath);
        if (!m.matches()) throw new IllegalArgumentException("not a Llama module path: " + modulePath);
        String tt = switch (m.group(3)) {
            case "o_proj" -> "attn.output_proj";
            case "gate_proj" -> "mlp.w1";
            case "down_proj" -> "mlp.w2";
            case "up_proj" -> "mlp.w3";
            default -> "attn." + m.group(3);
        };
        return "layers." + m.group(1) + "." + tt + "." + param;
    }
}
