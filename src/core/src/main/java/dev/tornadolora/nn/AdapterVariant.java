package dev.tornadolora.nn;

import java.util.List;

/**
 * What a LoRA variant changes in a {@link LoRALinear}, the one seam between the layer (dropout, threads, the
 * backend binding, A and B) and a variant's own parameters and math. The layer's kernels always compute LoRA,
 * {@code y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ}; a variant rewrites that output after the forward, rewrites dy before the
 * kernels' backward (and takes its own gradients from it), adds its parameters, and rewrites the merged weight.
 * Plain LoRA ({@link #LORA}) changes nothing; {@link DoRA} is PEFT's {@code use_dora}.
 */
public interface AdapterVariant {

    /** Plain LoRA: no parameter, no change. */
    AdapterVariant LORA = new AdapterVariant() {
        @Override public String name() { return "lora"; }
        @Override public List<Parameter> parameters() { return List.of(); }
        @Override public Object forward(LoRALinear layer, float[] y, int tokens) { return null; }
        @Override public float[] backward(LoRALinear layer, Object saved, float[] dy, int tokens) { return dy; }
        @Override public void merge(LoRALinear layer, float[] merged) {}
        @Override public void initialize(LoRALinear layer) {}
        @Override public void zeroGrad() {}
        @Override public AdapterVariant fresh(LoRALinear layer) { return this; }
    };

    /** {@code lora} or {@code dora}. */
    String name();

    /** The variant's trainable parameters besides A and B, torchtune-named (live arrays). */
    List<Parameter> parameters();

    /**
     * Rewrites the kernels' output {@code y} [tokens, out] (computed without dropout) in place.
     *
     * @return what {@link #backward} needs, or null
     */
    Object forward(LoRALinear layer, float[] y, int tokens);

    /**
     * Accumulates the variant's gradients from {@code dy} [tokens, out] and returns the dy the kernels'
     * backward gets (possibly {@code dy} itself). Called under the layer's gradient lock.
     */
    float[] backward(LoRALinear layer, Object saved, float[] dy, int tokens);

    /** Rewrites {@code merged} = W + s·B·A [out, in] (fp32, NF4 dequantized) into the weight the layer computes with. */
    void merge(LoRALinear layer, float[] merged);

    /** Initialises the variant's parameters from the layer's current base and adapters. */
    void initialize(LoRALinear layer);

    void zeroGrad();

    /** The same variant with new, zeroed storage (torchtune's {@code to_empty}). */
    AdapterVariant fresh(LoRALinear layer);
}
