package dev.tornadolora.kernels;

/**
 * The adapters of a LoRA layer, A = {@code lora_a.weight} [rank, in] and B = {@code lora_b.weight} [out, rank],
 * row-major; or their gradients, laid out the same. A backend reads them during the call only and keeps no
 * reference, so an optimizer may write them in place between calls.
 */
public record Adapters(float[] a, float[] b) {
    public Adapters {
        if (a == null || b == null) {
            throw new IllegalArgumentException("adapters: lora_a and lora_b must both be given");
        }
    }
}
