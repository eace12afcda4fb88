package dev.tornadolora.finetune;

import dev.tornadolora.train.Trainer;

import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.ServiceLoader;

/**
 * A {@link Finetuner}'s whole optimizer step on an accelerator that keeps the model's state (frozen weights,
 * adapters, gradients, AdamW's buffers) in its own memory: forward, loss, backward, clipping and AdamW without
 * the host in between. The host's adapters and optimizer buffers are stale while it runs; {@link #toHost} writes
 * them back (the caller does so before an evaluation, a save and at the end).
 */
public interface DeviceStep extends StepExecutor, AutoCloseable {

    /** Writes the device's adapters and AdamW state into the finetuner's model and optimizer (no-op when current). */
    void toHost();

    /**
     * The eval loss of {@code eval} in batches of {@code batch} rows computed on the device from its own adapters
     * (as {@link Finetuner#evalLoss(TokenDataset, int)}: no dropout, token-weighted), or empty when this device
     * does not evaluate these rows (the caller then calls {@link #toHost} and evaluates on the host).
     */
    default OptionalDouble evalLoss(TokenDataset eval, int batch) {
        return OptionalDouble.empty();
    }

    /** Numbers of the last step for the training log (e.g. {@code copy_in_bytes}, kernel ms per stage). */
    Map<String, Double> lastStepStats();

    /** Bytes of device memory the step's buffers hold (weights, adapters, optimizer state, activations); -1 unknown. */
    default long deviceBytes() {
        return -1;
    }

    /** One line on what runs where, for the run's header. */
    String describe();

    @Override
    void close();

    /**
     * The accelerators' whole-step executors on the class or module path ({@code META-INF/services}), each asked in
     * turn; empty when none serves this finetuner's model and settings (it then runs on {@link StepExecutor#LOCAL}),
     * and for DoRA or per-module rank/alpha patterns, which only the layers' own path computes.
     */
    static Optional<DeviceStep> find(Trainer trainer) {
        if (!(trainer.task() instanceof Finetuner finetuner)) return Optional.empty();
        var lora = finetuner.model().lora();
        if (lora.dora() || !lora.rankPattern().isEmpty() || !lora.alphaPattern().isEmpty()) {
            // the whole-step plans compute plain LoRA of one rank; the layers' kernels run every adapter variant
            return Optional.empty();
        }
        for (Provider p : ServiceLoader.load(Provider.class)) {
            Optional<DeviceStep> s = p.open(finetuner, trainer);
            if (s.isPresent()) return s;
        }
        return Optional.empty();
    }

    /** An accelerator backend's factory of {@link DeviceStep}s. */
    interface Provider {
        /** A whole-step executor for this finetuner, or empty when its device, model or settings are not served. */
        Optional<DeviceStep> open(Finetuner finetuner, Trainer trainer);
    }
}
