package dev.tornadolora.llama;

import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.TargetModules;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where LoRA goes in a Llama model and how: PEFT's {@code target_modules} (any subset of q/k/v/o/gate/up/down_proj
 * and lm_head, {@code "all-linear"}, or a regex on the full module name; see {@link TargetModules}), {@code r},
 * {@code lora_alpha}, {@code lora_dropout}, {@code use_rslora}, {@code use_dora}, {@code rank_pattern} and
 * {@code alpha_pattern}, and torchtune's {@code quantize_base}. torchtune's knobs ({@code lora_attn_modules},
 * {@code apply_lora_to_mlp}, {@code apply_lora_to_output}) are a constructor that lists the same modules.
 *
 * <pre>
 *   scale = alpha / rank             (LoRA, torchtune and PEFT)
 *   scale = alpha / √rank            (rsLoRA, PEFT's use_rslora: a scale rule; alpha stays the user's)
 *   W'    = m ⊙ (W + scale·B·A) / ‖W + scale·B·A‖ per output row   (DoRA, PEFT's use_dora)
 * </pre>
 * With {@code quantizeBase} every q/k/v/o/gate/up/down weight is NF4 (torchtune's QLoRA builders with
 * {@code FrozenNF4Linear}), LoRA'd or not; embeddings, norms and lm_head stay full precision. No module at all is
 * allowed: the frozen model, with no trainable parameter.
 */
public record LoraSettings(TargetModules targets, int rank, float alpha, float dropout, boolean rslora, boolean dora,
                           boolean quantizeBase, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern) {

    /** The attention projections LoRA may go on, in model order. */
    public static final List<String> ATTN_MODULES = List.of("q_proj", "k_proj", "v_proj", "o_proj");
    /** The MLP projections, in model order. */
    public static final List<String> MLP_MODULES = List.of("gate_proj", "up_proj", "down_proj");
    public static final String OUTPUT_MODULE = "lm_head";

    public LoraSettings {
        if (targets == null) throw new IllegalArgumentException("target_modules must be given");
        if (rank <= 0) {
            throw new IllegalArgumentException("lora_rank must be positive, got " + rank);
        }
        if (!Float.isFinite(alpha)) {
            throw new IllegalArgumentException("lora_alpha must be finite, got " + alpha);
        }
        if (!(dropout >= 0f && dropout < 1f)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
        }
        rankPattern = rankPattern == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern));
        alphaPattern = alphaPattern == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern));
    }

    /** PEFT's settings without per-module patterns. */
    public LoraSettings(TargetModules targets, int rank, float alpha, float dropout, boolean rslora, boolean dora,
                        boolean quantizeBase) {
        this(targets, rank, alpha, dropout, rslora, dora, quantizeBase, Map.of(), Map.of());
    }

    /**
     * torchtune's knobs: {@code lora_attn_modules} ⊆ q/k/v/o_proj, {@code apply_lora_to_mlp} (gate, up, down),
     * {@code apply_lora_to_output} (lm_head).
     */
    public LoraSettings(Set<String> attnModules, boolean mlp, boolean output, int rank, float alpha, float dropout,
                        boolean rslora, boolean quantizeBase) {
        this(TargetModules.of(knobs(attnModules, mlp, output)), rank, alpha, dropout, rslora, false, quantizeBase);
    }

    private static List<String> knobs(Set<String> attnModules, boolean mlp, boolean output) {
        List<String> t = new ArrayList<>();
        for (String m : attnModules) {
            if (!ATTN_MODULES.contains(m)) {
                throw new IllegalArgumentException("lora_attn_modules: unknown module '" + m + "'; expected a subset of "
                        + ATTN_MODULES);
            }
            t.add(m);
        }
        if (mlp) t.addAll(MLP_MODULES);
        if (output) t.add(OUTPUT_MODULE);
        return t;
    }

    /** torchtune's defaults: q_proj and v_proj, rank 8, alpha 16, no dropout, no MLP, no output, fp32 base. */
    public static LoraSettings defaults() {
        return new LoraSettings(Set.of("q_proj", "v_proj"), false, false, 8, 16f, 0f, false, false);
    }

    /** No adapter anywhere: the frozen model (optionally with its projections in NF4). */
    public static LoraSettings none(boolean quantizeBase) {
        return new LoraSettings(TargetModules.of(List.of()), 8, 16f, 0f, false, false, quantizeBase);
    }

    /** The settings a PEFT adapter's config describes (quantizeBase false: not PEFT's to say). */
    public static LoraSettings of(PeftAdapters.Config c) {
        return new LoraSettings(c.targets(), c.r(), (float) c.alpha(), (float) c.dropout(), c.rslora(), c.dora(),
                false, c.rankPattern(), c.alphaPattern());
    }

    /**
     * PEFT's {@code LoraConfig} for these settings on a model whose adapted modules are {@code adapted} (full
     * names): as PEFT saves it, {@code "all-linear"} becomes the list of the modules it chose.
     */
    public PeftAdapters.Config peftConfig(String baseModelNameOrPath, List<String> adapted) {
        TargetModules t = targets.allLinear() ? TargetModules.of(adapted) : targets;
        return new PeftAdapters.Config(rank, PeftAdapters.decimal(alpha), PeftAdapters.decimal(dropout), t, rslora, dora,
                rankPattern, alphaPattern,
                baseModelNameOrPath, "CAUSAL_LM");
    }

    /** PEFT's {@code target_modules} as given: the sorted names, or {@code "all-linear"} or the regex. */
    public List<String> targetModules() {
        return targets.asList();
    }

    /** Whether the module with this full name ({@code model.layers.0.self_attn.q_proj}, {@code lm_head}) is adapted. */
    public boolean targets(String modulePath) {
        return targets.matches(modulePath, modulePath.equals(OUTPUT_MODULE));
    }

    /** Whether lm_head carries an adapter (torchtune's {@code apply_lora_to_output}). */
    public boolean output() {
        return targets(OUTPUT_MODULE);
    }

    /** The rank of the module with this full name ({@code rank_pattern}, PEFT's matching). */
    public int rankOf(String modulePath) {
        return peftConfig(null, List.of()).rankOf(modulePath);
    }

    /** The alpha of the module with this full name ({@code alpha_pattern}). */
    public float alphaOf(String modulePath) {
        return (float) peftConfig(null, List.of()).alphaOf(modulePath);
    }

    /** The LoRA scale of a module without a pattern: alpha/rank, or alpha/√rank with rsLoRA. */
    public float scale() {
        return rslora ? (float) (alpha / Math.sqrt(rank)) : alpha / rank;
    }

    /** The same settings with {@code quantizeBase} set as given. */
    public LoraSettings withQuantizeBase(boolean q) {
        return new LoraSettings(targets, rank, alpha, dropout, rslora, dora, q, rankPattern, alphaPattern);
    }

    /** The same settings with dropout p. */
    public LoraSettings withDropout(float p) {
        return new LoraSettings(targets, rank, alpha, p, rslora, dora, quantizeBase, rankPattern, alphaPattern);
    }
}
