package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * The decoder families this library builds, as torchtune's model builders: one generic pre-norm decoder
 * ({@link LlamaForCausalLM}: embedding, RMSNorm, RoPE, causal GQA, gated MLP, lm_head) whose parts each family chooses
 * ({@link Parts}), and the registry that {@code config.json}'s {@code model_type} and {@code architectures} select
 * from. Adding a family is one constant here: its names, its config class's defaults, its parts, the fields it
 * refuses by name, and what it writes into a {@code config.json}.
 */
public enum ModelFamily {
    /** transformers' {@code LlamaForCausalLM}: no biases, no q/k norm; {@code attention_bias}/{@code mlp_bias} refused. */
    LLAMA("llama", "{}", "LlamaForCausalLM", "LlamaModel") {
        @Override Parts parts(JsonNode c, int layers) {
            if (LlamaConfig.bool(c, "attention_bias", false)) {
                throw new IllegalArgumentException("attention_bias true is not supported (Llama checkpoints have none)");
            }
            if (LlamaConfig.bool(c, "mlp_bias", false)) {
                throw new IllegalArgumentException("mlp_bias true is not supported (Llama checkpoints have none)");
            }
            requireSilu(c);
            return Parts.LLAMA;
        }

        @Override void writeFields(ObjectNode json, LlamaConfig c) {
            json.put("attention_bias", false);
            json.put("mlp_bias", false);
            json.put("pretraining_tp", 1);
        }
    },
    /**
     * transformers' {@code Qwen2ForCausalLM} (Qwen2, Qwen2.5): q/k/v with biases (o_proj without), frozen and kept
     * through LoRA and merge; sliding-window attention on the layers {@code layer_types} (or
     * {@code use_sliding_window} with {@code max_window_layers}) names, as {@code Qwen2Config} derives them.
     */
    QWEN2("qwen2", "{\"vocab_size\": 151936, \"intermediate_size\": 22016, \"max_position_embeddings\": 32768,"
            + " \"bos_token_id\": null, \"eos_token_id\": null, \"sliding_window\": 4096, \"max_window_layers\": 28}",
            "Qwen2ForCausalLM", "Qwen2Model") {
        @Override Parts parts(JsonNode c, int layers) {
            requireSilu(c);
            return new Parts(this, true, false, false, Activation.SILU, false, qwenWindows(c, layers));
        }

        @Override void writeFields(ObjectNode json, LlamaConfig c) {
            writeQwenWindows(json, c);
        }
    },
    /**
     * transformers' {@code Qwen3ForCausalLM}: per-head RMSNorm on q and k ({@code q_norm}, {@code k_norm}) before
     * RoPE, {@code head_dim} given (default 128, not hidden/heads); {@code attention_bias} refused; sliding windows
     * as Qwen2.
     */
    QWEN3("qwen3", "{\"vocab_size\": 151936, \"intermediate_size\": 22016, \"max_position_embeddings\": 32768,"
            + " \"head_dim\": 128, \"bos_token_id\": null, \"eos_token_id\": null, \"sliding_window\": 4096,"
            + " \"max_window_layers\": 28}", "Qwen3ForCausalLM", "Qwen3Model") {
        @Override Parts parts(JsonNode c, int layers) {
            if (LlamaConfig.bool(c, "attention_bias", false)) {
                throw new IllegalArgumentException("attention_bias true is not supported for Qwen3 (released Qwen3"
                        + " checkpoints have none)");
            }
            requireSilu(c);
            return new Parts(this, false, true, false, Activation.SILU, false, qwenWindows(c, layers));
        }

        @Override void writeFields(ObjectNode json, LlamaConfig c) {
            json.put("attention_bias", false);
            writeQwenWindows(json, c);
        }
    },
    /**
     * transformers' {@code MistralForCausalLM}: Llama's parts with sliding-window attention on every layer when
     * {@code sliding_window} is a number (default 4096, as {@code MistralConfig}; null: full causal attention).
     * {@code layer_types} is ignored as transformers' Mistral ignores it.
     */
    MISTRAL("mistral", "{\"intermediate_size\": 14336, \"num_key_value_heads\": 8,"
            + " \"max_position_embeddings\": 131072, \"sliding_window\": 4096}", "MistralForCausalLM", "MistralModel") {
        @Override Parts parts(JsonNode c, int layers) {
            requireSilu(c);
            int window = window(c, "sliding_window");
            return new Parts(this, false, false, false, Activation.SILU, false,
                    window == 0 ? List.of() : Collections.nCopies(layers, window));
        }

        @Override void writeFields(ObjectNode json, LlamaConfig c) {
            int w = c.parts().window(0);
            if (w > 0) json.put("sliding_window", w); else json.putNull("sliding_window");
        }
    },
    /**
     * transformers' {@code GemmaForCausalLM} (Gemma 1): embeddings × √hidden (rounded to fp32, the compute dtype),
     * RMSNorm scaling by (1 + w), GeGLU with {@code gelu_pytorch_tanh} ({@code hidden_act} "gelu" is read as it, as
     * transformers does), head_dim default 256, tied lm_head by default. {@code attention_bias} and
     * {@code use_bidirectional_attention} true are refused; Gemma 2 and 3 are other model types (refused).
     */
    GEMMA("gemma", "{\"vocab_size\": 256000, \"hidden_size\": 3072, \"intermediate_size\": 24576,"
            + " \"num_hidden_layers\": 28, \"num_attention_heads\": 16, \"num_key_value_heads\": 16, \"head_dim\": 256,"
            + " \"hidden_act\": \"gelu_pytorch_tanh\", \"max_position_embeddings\": 8192, \"eos_token_id\": 1,"
            + " \"bos_token_id\": 2, \"tie_word_embeddings\": true}", "GemmaForCausalLM", "GemmaModel") {
        @Override Parts parts(JsonNode c, int layers) {
            if (LlamaConfig.bool(c, "attention_bias", false)) {
                throw new IllegalArgumentException("attention_bias true is not supported for Gemma (released Gemma"
                        + " checkpoints have none)");
            }
            if (LlamaConfig.bool(c, "use_bidirectional_attention", false)) {
                throw new IllegalArgumentException("use_bidirectional_attention true is not supported (only causal"
                        + " attention)");
            }
            String act = LlamaConfig.text(c, "hidden_act", "gelu_pytorch_tanh");
            if (!act.equals("gelu_pytorch_tanh") && !act.equals("gelu")) {
                throw new IllegalArgumentException("hidden_act \"" + act + "\" is not supported for Gemma (only"
                        + " gelu_pytorch_tanh, and \"gelu\", which GemmaConfig reads as it)");
            }
            return new Parts(this, false, false, true, Activation.GELU_TANH, true, List.of());
        }

        @Override void writeFields(ObjectNode json, LlamaConfig c) {
            json.put("attention_bias", false);
            json.putNull("use_bidirectional_attention");
        }
    };

    /** The gate's activation in the MLP, {@code down(act(gate(x)) · up(x))}. */
    public enum Activation {
        /** SiLU: SwiGLU (Llama, Qwen, Mistral). */
        SILU("silu"),
        /** GELU, tanh approximation: GeGLU (Gemma). */
        GELU_TANH("gelu_pytorch_tanh");

        private final String hfName;

        Activation(String hfName) {
            this.hfName = hfName;
        }

        /** transformers' {@code hidden_act} name. */
        public String hfName() { return hfName; }
    }

    /**
     * The parts a family puts into the generic decoder.
     *
     * @param family        the family (its names for config.json)
     * @param qkvBias       q/k/v projections carry a frozen bias (Qwen2)
     * @param qkNorm        per-head RMSNorm of q and k before RoPE, weights {@code self_attn.q_norm}/{@code k_norm}
     *                      (Qwen3)
     * @param normPlusOne   every RMSNorm scales by (1 + w), computed in fp32, instead of w (Gemma)
     * @param activation    the MLP gate's activation
     * @param embedScale    embeddings multiplied by √hidden rounded to fp32 (Gemma's normalizer)
     * @param windows       per layer, the sliding window (a query sees itself and the window − 1 positions before
     *                      it), 0 for full causal attention; empty when no layer slides
     */
    public record Parts(ModelFamily family, boolean qkvBias, boolean qkNorm, boolean normPlusOne,
                        Activation activation, boolean embedScale, List<Integer> windows) {
        /** Llama's: no biases, no q/k norm, w·x̂, SwiGLU, no embedding scale, full attention. */
        public static final Parts LLAMA = new Parts(ModelFamily.LLAMA, false, false);

        public Parts {
            Objects.requireNonNull(family, "family");
            Objects.requireNonNull(activation, "activation");
            windows = List.copyOf(windows);
            for (int w : windows) {
                if (w < 0) throw new IllegalArgumentException("sliding window must be positive, got " + w);
            }
            if (windows.stream().allMatch(w -> w == 0)) windows = List.of();
        }

        /** Llama's parts with q/k/v biases and q/k norms as given (Qwen2, Qwen3 without sliding windows). */
        public Parts(ModelFamily family, boolean qkvBias, boolean qkNorm) {
            this(family, qkvBias, qkNorm, false, Activation.SILU, false, List.of());
        }

        /** The sliding window of layer {@code layer}, 0 for full causal attention. */
        public int window(int layer) {
            return windows.isEmpty() ? 0 : windows.get(layer);
        }

        /** The weights an RMSNorm multiplies by: {@code w}, or a new fp32 1 + w (as {@code 1.0 + w.float()}). */
        float[] normScale(float[] w) {
            if (!normPlusOne) return w;
            float[] s = new float[w.length];
            for (int i = 0; i < w.length; i++) s[i] = 1f + w[i];
            return s;
        }
    }

    private final String modelType;
    private final List<String> architectures;
    /** The defaults of the family's transformers config class where they differ from LlamaConfig's. */
    private final ObjectNode defaults;

    ModelFamily(String modelType, String defaults, String... architectures) {
        this.modelType = modelType;
        this.architectures = List.of(architectures);
        try {
            this.defaults = (ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(defaults);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code config.json}'s {@code model_type}. */
    public String modelType() { return modelType; }

    /** The class name transformers saves in {@code architectures} for the causal LM. */
    public String architecture() { return architectures.get(0); }

    /**
     * Validates the family's own fields of {@code config.json} (read with {@link #withDefaults}) and returns its
     * parts for a model of {@code layers} layers.
     */
    abstract Parts parts(JsonNode c, int layers);

    /** Writes the family's own fields into a {@code config.json} as transformers 5 writes them. */
    abstract void writeFields(ObjectNode json, LlamaConfig c);

    /**
     * {@code c} over the family's defaults: a field absent from {@code config.json} takes the value the family's
     * transformers config class gives it (e.g. Gemma's head_dim 256 and tied embeddings, Mistral's window 4096).
     */
    JsonNode withDefaults(JsonNode c) {
        ObjectNode merged = defaults.deepCopy();
        c.properties().forEach(e -> merged.set(e.getKey(), e.getValue()));
        return merged;
    }

    /** head_dim when config.json (with the family's defaults) does not give it: hidden/heads. */
    static int defaultHeadDim(int hidden, int heads) {
        if (heads > 0 && hidden % heads != 0) {
            throw new IllegalArgumentException("hidden_size (" + hidden + ") is not a multiple of num_attention_heads ("
                    + heads + ") and head_dim is not given");
        }
        return heads > 0 ? hidden / heads : 0;
    }

    /**
     * The family {@code config.json} names: by {@code model_type}, every entry of {@code architectures} (when given)
     * one of that family's classes. Anything else is refused with the supported names.
     */
    static ModelFamily of(JsonNode c) {
        String modelType = LlamaConfig.text(c, "model_type", null);
        if (modelType == null) {
            throw new IllegalArgumentException("missing model_type (supported: " + supportedModelTypes() + ")");
        }
        ModelFamily family = Arrays.stream(values()).filter(f -> f.modelType.equals(modelType)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("unknown architecture: model_type \"" + modelType
                        + "\" (supported: " + supportedModelTypes() + ")"));
        JsonNode arch = c.get("architectures");
        if (arch != null && !arch.isNull()) {
            if (!arch.isArray()) throw new IllegalArgumentException("architectures is not a list");
            for (JsonNode a : arch) {
                if (!a.isTextual() || !family.architectures.contains(a.asText())) {
                    throw new IllegalArgumentException("unknown architecture " + a + " for model_type \"" + modelType
                            + "\" (supported: " + supportedArchitectures() + ")");
                }
            }
        }
        return family;
    }

    private static String supportedModelTypes() {
        List<String> s = new ArrayList<>();
        for (ModelFamily f : values()) s.add("\"" + f.modelType + "\"");
        return String.join(", ", s);
    }

    private static String supportedArchitectures() {
        List<String> s = new ArrayList<>();
        for (ModelFamily f : values()) s.add(f.architecture());
        return String.join(", ", s);
    }

    private static void requireSilu(JsonNode c) {
        String act = LlamaConfig.text(c, "hidden_act", "silu");
        if (!act.equals("silu")) throw new IllegalArgumentException("hidden_act \"" + act + "\" is not supported (only silu)");
    }

    /** A window field: a positive integer, or 0 for null (no window). */
    private static int window(JsonNode c, String field) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return 0;
        int w = LlamaConfig.integer(c, field, 0);
        if (w <= 0) throw new IllegalArgumentException(field + " must be a positive integer or null, got " + v);
        return w;
    }

    /**
     * Qwen2Config's and Qwen3Config's rule: {@code sliding_window} counts only when {@code use_sliding_window}; the
     * layer types are {@code layer_types} when given, else "sliding_attention" from {@code max_window_layers} on
     * (when a window is set). A sliding layer without a window is refused (transformers fails on it).
     */
    private static List<Integer> qwenWindows(JsonNode c, int layers) {
        int window = LlamaConfig.bool(c, "use_sliding_window", false) ? window(c, "sliding_window") : 0;
        JsonNode types = c.get("layer_types");
        List<Integer> windows = new ArrayList<>();
        if (types == null || types.isNull()) {
            int from = LlamaConfig.integer(c, "max_window_layers", 28);
            for (int i = 0; i < layers; i++) windows.add(window > 0 && i >= from ? window : 0);
            return windows;
        }
        if (!types.isArray()) throw new IllegalArgumentException("layer_types is not a list");
        if (types.size() != layers) {
            throw new IllegalArgumentException("layer_types has " + types.size() + " entries but num_hidden_layers is "
                    + layers);
        }
        for (JsonNode t : types) {
            String type = t.isTextual() ? t.asText() : t.toString();
            switch (type) {
                case "full_attention" -> windows.add(0);
                case "sliding_attention" -> {
                    if (window == 0) {
                        throw new IllegalArgumentException("layer_types names \"sliding_attention\" but no sliding_window"
                                + " is in effect (use_sliding_window false or sliding_window null)");
                    }
                    windows.add(window);
                }
                default -> throw new IllegalArgumentException("layer_types entry " + t + " is not supported (only"
                        + " \"full_attention\" and \"sliding_attention\")");
            }
        }
        return windows;
    }

    /** Qwen2/Qwen3's window fields as Qwen2Config writes them, {@code layer_types} explicit. */
    private static void writeQwenWindows(ObjectNode json, LlamaConfig c) {
        Parts p = c.parts();
        int window = 0, first = c.numHiddenLayers();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            if (p.window(i) > 0) {
                window = p.window(i);
                first = Math.min(first, i);
            }
        }
        json.put("use_sliding_window", window > 0);
        if (window > 0) json.put("sliding_window", window); else json.putNull("sliding_window");
        json.put("max_window_layers", window > 0 ? first : 28);
        var types = json.putArray("layer_types");
        for (int i = 0; i < c.numHiddenLayers(); i++) types.add(p.window(i) > 0 ? "sliding_attention" : "full_attention");
    }
}
