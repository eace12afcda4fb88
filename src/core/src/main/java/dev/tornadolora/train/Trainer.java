package dev.tornadolora.train;

import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;

import java.util.List;

/**
 * One training step as a torchtune recipe runs it: zero the gradients, forward, loss, backward through the
 * whole model, clip the global gradient norm (optional), optimizer step, scheduler step.
 * <p>A non-finite loss or gradient norm stops training with an exception before the optimizer step, so a
 * poisoned update never reaches the parameters (or a checkpoint written after it).
 */
public final class Trainer {

    /** A loss with its gradient, e.g. {@code Losses::mse}. */
    @FunctionalInterface
    public interface LossFunction {
        Losses.Result apply(Tensor prediction, Tensor target);
    }

    /** What one step measured: the loss before the update, the rate it used, the norm before clipping. */
    public record StepRecord(long step, double loss, double lr, double gradNorm, long tokens) {}

    private final Module model;
    private final Optimizer optimizer;
    private final LrScheduler scheduler;
    private final LossFunction loss;
    private final double maxGradNorm;
    private final List<Parameter> params;

    /**
     * @param scheduler   null for a constant rate
     * @param maxGradNorm clip threshold; 0 or less disables clipping (the norm is still measured)
     */
    public Trainer(Module model, Optimizer optimizer, LrScheduler scheduler, LossFunction loss, double maxGradNorm) {
        this.model = model;
        this.optimizer = optimizer;
        this.scheduler = scheduler;
        this.loss = loss;
        this.maxGradNorm = maxGradNorm;
        this.params = optimizer.parameters();
    }

    /** Runs step number {@code step} (1-based, for messages) on one batch; x [..., in], target like the output. */
    public StepRecord step(long step, Tensor x, Tensor target) {
        double lr = optimizer.lr();
        optimizer.zeroGrad();
        model.train(true);
        Losses.Result l = loss.apply(model.forward(x), target);
        if (!Double.isFinite(l.value())) {
            throw new IllegalStateException("training stopped at step " + step + ": the loss is " + l.value()
                    + " (try a lower learning rate); parameters were not updated");
        }
        model.backward(l.grad());
        double norm = maxGradNorm > 0 ? GradClip.clipGradNorm(params, maxGradNorm) : GradClip.globalNorm(params);
        if (!Double.isFinite(norm)) {
            throw new IllegalStateException("training stopped at step " + step + ": the gradient norm is " + norm
                    + "; parameters were not updated");
        }
        optimizer.step();
        if (scheduler != null) scheduler.step();
        long tokens = x.numel() / x.dim(-1);
        return new StepRecord(step, l.value(), lr, norm, tokens);
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    public LrScheduler scheduler() {
        return scheduler;
    }
}
