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
        /**
         * {@return the loss and its gradient with respect to {@code prediction}}
         *
         * @param prediction the model's output
         * @param target     what it should be
         */
        Losses.Result apply(Tensor prediction, Tensor target);
    }

    /**
     * What one step measured.
     *
     * @param step     the step's number
     * @param loss     the loss before the update
     * @param lr       the learning rate the update used
     * @param gradNorm the global gradient norm before clipping
     * @param tokens   rows of the batch
     */
    public record StepRecord(long step, double loss, double lr, double gradNorm, long tokens) {}

    private final Module model;
    private final Optimizer optimizer;
    private final LrScheduler scheduler;
    private final LossFunction loss;
    private final double maxGradNorm;
    private final List<Parameter> params;

    /**
     * A loop of zero_grad, forward, loss, backward, clipping, optimizer step and scheduler step.
     *
     * @param model       the model; its parameters are the optimizer's
     * @param optimizer   updates the parameters
     * @param scheduler   null for a constant rate
     * @param loss        the loss, e.g. {@code Losses::mse}
     * @param maxGradNorm clip threshold; 0 disables clipping (the norm is still measured); negative, infinite or NaN
     *                    is refused
     */
    public Trainer(Module model, Optimizer optimizer, LrScheduler scheduler, LossFunction loss, double maxGradNorm) {
        this.model = model;
        this.optimizer = optimizer;
        this.scheduler = scheduler;
        this.loss = loss;
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            // NaN or a negative threshold would silently turn clipping off.
            throw new IllegalArgumentException("max grad norm must be a finite number >= 0 (0: no clipping), got "
                    + maxGradNorm);
        }
        this.maxGradNorm = maxGradNorm;
        this.params = optimizer.parameters();
    }

    /**
     * Runs one training step on one batch.
     *
     * @param step   the step's number (1-based, for messages and the record)
     * @param x      the inputs [..., in]
     * @param target the wanted outputs, shaped like the model's
     * @return what the step measured
     */
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

    /** {@return the optimizer} */
    public Optimizer optimizer() {
        return optimizer;
    }

    /** {@return the scheduler, or null for a constant rate} */
    public LrScheduler scheduler() {
        return scheduler;
    }
}
