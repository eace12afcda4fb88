package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/**
 * What a kernel reads of a LoRA layer: the frozen base W [out, in] (+ bias [out]) and the adapters
 * A = {@code lora_a.weight} [rank, in], B = {@code lora_b.weight} [out, rank], all row-major.
 */
public interface LoraParams {
    int inDim();

    int outDim();

    int rank();

    /** alpha / rank. */
    float scale();

    BaseWeight base();

    /** [out], or null without bias. */
    float[] bias();

    float[] loraA();

    float[] loraB();

    /**
     * Bumped whenever the adapter arrays are written in place (optimizer step, load), so that a backend holding
     * a device copy knows to send them again. Base weights are frozen and never change under a backend.
     */
    long adapterVersion();
}
