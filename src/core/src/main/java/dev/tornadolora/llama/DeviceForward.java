package dev.tornadolora.llama;

import java.util.Optional;
import java.util.ServiceLoader;

/**
 * A whole-model forward (and backward, for the adapters' gradients) on an accelerator that holds the model's weights
 * and adapters in its own memory, for batches of one shape: what {@code forward --device} runs when the device's
 * backend serves the model (TornadoVM's device plan). Empty from {@link #find} otherwise, and the model's own path
 * (its layers bound to the backend) computes it.
 */
public interface DeviceForward extends AutoCloseable {

    /** The logits [rows · seq · vocab] of {@code inputIds} (rows of seq tokens, up to the batch it was made for). */
    float[] logits(int[] inputIds);

    /**
     * transformers' causal-LM loss of the batch, its logits into {@code logits} and the gradient of the loss with
     * respect to every adapter into the model's parameters' {@code grad()} arrays (replacing what they held).
     */
    double forwardBackward(int[] inputIds, int[] labels, float[] logits);

    /** One line on what runs where. */
    String describe();

    @Override
    void close();

    /** The first accelerator on the class or module path that serves {@code model} for batches of batch × seq. */
    static Optional<DeviceForward> find(LlamaForCausalLM model, int batch, int seq) {
        for (Provider p : ServiceLoader.load(Provider.class)) {
            Optional<DeviceForward> f = p.open(model, batch, seq);
            if (f.isPresent()) return f;
        }
        return Optional.empty();
    }

    /** An accelerator backend's factory of {@link DeviceForward}s. */
    interface Provider {
        /** A forward for this model and batch shape, or empty when its device, model or settings are not served. */
        Optional<DeviceForward> open(LlamaForCausalLM model, int batch, int seq);
    }
}
