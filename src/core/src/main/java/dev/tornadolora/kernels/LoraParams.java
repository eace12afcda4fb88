package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/**
 * What a kernel reads of a LoRA layer: the frozen base W [out, in] (+ bias [out]) and the adapters
 * A = {@code lora_a.weight} [rank, in], B = {@code lora_b.weight} [out, rank], all row-major.
 */
public interface LoraParams {
    /** {@return input features} */
    int inDim();

    /** {@return output features} */
    int outDim();

    /** {@return the adapters' rank} */
    int rank();

    /** {@return alpha / rank} */
    float scale();

    /** {@return the frozen base W [out, in]} */
    BaseWeight base();

    /** {@return the bias [out], or null without bias} */
    float[] bias();

    /** {@return A [rank, in] (the live array)} */
    float[] loraA();

    /** {@return B [out, rank] (the live array)} */
    float[] loraB();

    /**
     * Bumped whenever the adapter arrays are written in place (optimizer step, load), so that a backend holding
     * a device copy knows to send them again. Base weights are frozen and never change under a backend.
     *
     * @return the adapters' version
     */
    long adapterVersion();
}
