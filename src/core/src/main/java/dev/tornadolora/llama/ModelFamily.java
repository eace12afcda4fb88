package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The decoder families this library builds, as torchtune's model builders: one generic pre-norm decoder
 * ({@link LlamaForCausalLM}: embedding, RMSNorm, RoPE, causal GQA, SwiGLU, lm_head) whose parts each family chooses
 * ({@link Parts}), and the registry that {@code config.json}'s {@code model_type} and {@code architectures} select
 * from. Adding a family is one constant here: its names, its parts, and the fields it refuses by name.
 */
public enum ModelFamily {
    /** transformers' {@code LlamaForCausalLM}: no biases, no q/k norm; {@code attention_bias}/{@code mlp_bias} refused. */
    LLAMA("llama", "LlamaForCausalLM", "LlamaModel") {
        @Override Parts parts(JsonNode c) {
            if (LlamaConfig.bool(c, "attention_bias", false)) {
                throw new IllegalArgumentException("attention_bias true is not supported (Llama checkpoints have none)");
            }
            if (LlamaConfig.bool(c, "mlp_bias", false)) {
                throw new IllegalArgumentException("mlp_bias true is not supported (Llama checkpoints have none)");
            }
            return Parts.LLAMA;
        }
    },
    /**
     * transformers' {@code Qwen2ForCausalLM} (Qwen2, Qwen2.5): q/k/v with biases (o_proj without), frozen and kept
     * through LoRA and merge; sliding-window attention refused.
     */
    QWEN2("qwen2", "Qwen2ForCausalLM", "Qwen2Model") {
        @Override Parts parts(JsonNode c) {
            refuseSlidingWindow(c, "Qwen2");
            return new Parts(this, true, false);
        }
    },
    /**
     * transformers' {@code Qwen3ForCausalLM}: per-head RMSNorm on q and k ({@code q_norm}, {@code k_norm}) before
     * RoPE, {@code head_dim} given (default 128, not hidden/heads); {@code attention_bias} and sliding-window
     * attention refused.
     */
    QWEN3("qwen3", "Qwen3ForCausalLM", "Qwen3Model") {
        @Override Parts parts(JsonNode c) {
            if (LlamaConfig.bool(c, "attention_bias", false)) {
                throw new IllegalArgumentException("attention_bias true is not supported for Qwen3 (released Qwen3"
                        + " checkpoints have none)");
            }
            refuseSlidingWindow(c, "Qwen3");
            return new Parts(this, false, true);
        }

        @Override int defaultHeadDim(int hidden, int heads) {
            return 128; // Qwen3Config.head_dim's default
        }
    };

    /**
     * The parts a family puts into the generic decoder. RMSNorm (w·x̂), SiLU-gated MLP and rotate-half RoPE are
     * common to every family so far; a family that differs there (Gemma's 1 + w, GeGLU) adds its part here.
     *
     * @param family  the family (its names for config.json)
     * @param qkvBias q/k/v projections carry a frozen bias (Qwen2)
     * @param qkNorm  per-head RMSNorm of q and k before RoPE, weights {@code self_attn.q_norm}/{@code k_norm} (Qwen3)
     */
    public record Parts(ModelFamily family, boolean qkvBias, boolean qkNorm) {
        /** Llama's: no biases, no q/k norm. */
        public static final Parts LLAMA = new Parts(ModelFamily.LLAMA, false, false);

        public Parts {
            java.util.Objects.requireNonNull(family, "family");
        }
    }

    private final String modelType;
    private final List<String> architectures;

    ModelFamily(String modelType, String... architectures) {
        this.modelType = modelType;
        this.architectures = List.of(architectures);
    }

    /** {@code config.json}'s {@code model_type}. */
    public String modelType() { return modelType; }

    /** The class name transformers saves in {@code architectures} for the causal LM. */
    public String architecture() { return architectures.get(0); }

    /** Validates the family's own fields of {@code config.json} and returns its parts. */
    abstract Parts parts(JsonNode c);

    /** head_dim when config.json does not give it. */
    int defaultHeadDim(int hidden, int heads) {
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

    /**
     * Refuses sliding-window attention by name: Qwen2/Qwen3 apply it (from {@code max_window_layers} on, or as
     * {@code layer_types} says) only when {@code use_sliding_window} is true; this decoder attends to every earlier
     * position.
     */
    private static void refuseSlidingWindow(JsonNode c, String family) {
        if (LlamaConfig.bool(c, "use_sliding_window", false)) {
            throw new IllegalArgumentException("use_sliding_window true is not supported (" + family
                    + " sliding-window attention; only full causal attention is implemented)");
        }
        JsonNode types = c.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray()) throw new IllegalArgumentException("layer_types is not a list");
            for (JsonNode t : types) {
                if (!t.isTextual() || !t.asText().equals("full_attention")) {
                    throw new IllegalArgumentException("layer_types entry " + t + " is not supported (only"
                            + " \"full_attention\"; sliding-window attention is not implemented)");
                }
            }
        }
    }
}
