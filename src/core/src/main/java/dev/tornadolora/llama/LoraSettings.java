package dev.tornadolora.llama;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where LoRA goes in a Llama model and how, with torchtune's knobs ({@code lora_attn_modules},
 * {@code apply_lora_to_mlp}, {@code apply_lora_to_output}, {@code lora_rank}, {@code lora_alpha},
 * {@code lora_dropout}, {@code quantize_base}) and PEFT's {@code use_rslora}.
 *
 * <pre>
 *   scale = alpha / rank             (LoRA, torchtune and PEFT)
 *   scale = alpha / √rank            (rsLoRA, PEFT's use_rslora)
 * </pre>
 * With {@code quantizeBase} every q/k/v/o/gate/up/down weight is NF4, LoRA'd or not (torchtune's QLoRA builders
 * with {@code FrozenNF4Linear}); embeddings, norms and lm_head stay full precision. No module at all (no
 * attention module, no MLP, no output) is allowed: the frozen model, with no trainable parameter.
 */
public record LoraSettings(Set<String> attnModules, boolean mlp, boolean output, int rank, float alpha, float dropout,
                           boolean rslora, boolean quantizeBase) {

    /** The attention projections LoRA may go on, in model order. */
    public static final List<String> ATTN_MODULES = List.of("q_proj", "k_proj", "v_proj", "o_proj");
    /** The MLP projections, in model order. */
    public static final List<String> MLP_MODULES = List.of("gate_proj", "up_proj", "down_proj");
    public static final String OUTPUT_MODULE = "lm_head";

    public LoraSettings {
        attnModules = Collections.unmodifiableSet(new TreeSet<>(attnModules));
        for (String m : attnModules) {
            if (!ATTN_MODULES.contains(m)) {
                throw new IllegalArgumentException("lora_attn_modules: unknown module '" + m + "'; expected a subset of "
                        + ATTN_MODULES);
            }
        }
        if (rank <= 0) {
            throw new IllegalArgumentException("lora_rank must be positive, got " + rank);
        }
        if (!Float.isFinite(alpha)) {
            throw new IllegalArgumentException("lora_alpha must be finite, got " + alpha);
        }
        if (!(dropout >= 0f && dropout < 1f)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
        }
    }

    /** torchtune's defaults: q_proj and v_proj, rank 8, alpha 16, no dropout, no MLP, no output, fp32 base. */
    public static LoraSettings defaults() {
        return new LoraSettings(Set.of("q_proj", "v_proj"), false, false, 8, 16f, 0f, false, false);
    }

    /** No adapter anywhere: the frozen model (optionally with its projections in NF4). */
    public static LoraSettings none(boolean quantizeBase) {
        return new LoraSettings(Set.of(), false, false, 8, 16f, 0f, false, quantizeBase);
    }

    /** PEFT's {@code target_modules}, sorted. */
    public List<String> targetModules() {
        TreeSet<String> t = new TreeSet<>(attnModules);
        if (mlp) t.addAll(MLP_MODULES);
        if (output) t.add(OUTPUT_MODULE);
        return List.copyOf(t);
    }

    /** Whether the projection named {@code module} (q_proj … down_proj, lm_head) carries an adapter. */
    public boolean targets(String module) {
        return attnModules.contains(module) || (mlp && MLP_MODULES.contains(module))
                || (output && OUTPUT_MODULE.equals(module));
    }

    /** The LoRA scale: alpha/rank, or alpha/√rank with rsLoRA. */
    public float scale() {
        return rslora ? (float) (alpha / Math.sqrt(rank)) : alpha / rank;
    }

    /** The same settings with {@code quantizeBase} set as given. */
    public LoraSettings withQuantizeBase(boolean q) {
        return new LoraSettings(attnModules, mlp, output, rank, alpha, dropout, rslora, q);
    }

    /** The same settings with dropout p. */
    public LoraSettings withDropout(float p) {
        return new LoraSettings(attnModules, mlp, output, rank, alpha, p, rslora, quantizeBase);
    }

    /** Every projection name in model order (attention, MLP, output) that carries an adapter. */
    public List<String> modulesInModelOrder() {
        List<String> out = new ArrayList<>();
        for (String m : ATTN_MODULES) if (targets(m)) out.add(m);
        for (String m : MLP_MODULES) if (targets(m)) out.add(m);
        if (output) out.add(OUTPUT_MODULE);
        return out;
    }
}
