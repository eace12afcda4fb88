package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/**
 * A backend binds one layer at a time: {@link #bind} takes the frozen part of a LoRA layer (base W [out, in], bias,
 * rank, scale s = alpha/rank) and returns the {@link LayerKernels} that own everything derived from it (packed
 * Wᵀ, device buffers, execution plans) until they are closed. Adapters are not bound: they travel with every call.
 *
 * <p>Backends: {@code reference} ({@link ScalarLoraKernels}), {@code jvm} (Vector API, or scalar threads when
 * {@code jdk.incubator.vector} is not readable), {@code tornado:B:D} (TornadoVM, through a
 * {@link LoraKernelsProvider}). {@code Device.open} finds them by name.
 */
public interface LoraBackend {

    /** The backend's name as users select it: {@code reference}, {@code jvm}, {@code tornado:0:0}. */
    String name();

    /**
     * Binds a layer. {@code bias} ([out] or null) and {@code base} are frozen: the caller rebinds after replacing
     * either. {@code rank} may be 0 for a layer without adapters (a frozen linear).
     */
    LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale);
}
