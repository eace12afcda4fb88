package dev.tornadolora.nn;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;

import java.util.List;

/**
 * What a LoRA variant computes in a {@link LoRALinear}: the one seam between the layer (dropout masks, threads, the
 * backend binding, A and B, the gradient lock) and a variant's own parameters and math. A variant runs the layer's
 * bound {@link LayerKernels} (which compute LoRA, {@code y = x·Wᵀ + b + s·((x⊙mask)·Aᵀ)·Bᵀ}, on any backend) and
 * combines their results; it adds its parameters and rewrites the merged weight. Plain LoRA ({@link #LORA}) is one
 * kernel call; {@link DoRA} is PEFT's {@code use_dora}.
 */
public interface AdapterVariant {

    /** Plain LoRA: the kernels' forward and backward, no parameter of its own. */
    AdapterVariant LORA = new AdapterVariant() {
        @Override public String name() { return "lora"; }
        @Override public List<Parameter> parameters() { return List.of(); }

        @Override
        public Object forward(LoRALinear layer, LayerKernels k, float[] x, float[] mask, int tokens, Adapters adapters,
                              float[] y) {
            return k.forward(x, mask, tokens, adapters, y);
        }

        @Override
        public void backward(LoRALinear layer, LayerKernels k, Object saved, float[] dy, float[] dx, Adapters adapters,
                             Adapters grads) {
            k.backward((LayerKernels.Activations) saved, dy, dx, adapters, grads);
        }

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
     * The layer's forward: writes y [tokens, out] for x [tokens, in] with the dropout multiplier {@code mask} (null:
     * none) and the adapters ({@code null}: disabled, only ever given to {@link #LORA}).
     *
     * @return what {@link #backward} needs
     */
    Object forward(LoRALinear layer, LayerKernels k, float[] x, float[] mask, int tokens, Adapters adapters, float[] y);

    /**
     * The layer's backward of one {@link #forward}: overwrites {@code dx} (null: not wanted) and accumulates into
     * {@code grads} and the variant's own gradients. Called under the layer's gradient lock.
     */
    void backward(LoRALinear layer, LayerKernels k, Object saved, float[] dy, float[] dx, Adapters adapters,
                  Adapters grads);

    /** Rewrites {@code merged} = W + s·B·A [out, in] (fp32, NF4 dequantized) into the weight the layer computes with. */
    void merge(LoRALinear layer, float[] merged);

    /** Initialises the variant's parameters from the layer's current base and adapters. */
    void initialize(LoRALinear layer);

    void zeroGrad();

    /** The same variant with new, zeroed storage (torchtune's {@code to_empty}). */
    AdapterVariant fresh(LoRALinear layer);
}
