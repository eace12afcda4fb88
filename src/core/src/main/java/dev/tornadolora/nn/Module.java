package dev.tornadolora.nn;

import dev.tornadolora.tensor.Tensor;

import java.util.List;

/**
 * A differentiable block in the style of {@code torch.nn.Module}, reduced to what training needs: forward keeps
 * what its backward will need, backward takes dL/dy and returns dL/dx while accumulating the gradients of the
 * module's trainable {@link Parameter}s. One forward, then at most one backward, per step and thread.
 */
public interface Module {

    /**
     * {@return the output (..., out)}
     *
     * @param x the input (..., in)
     */
    Tensor forward(Tensor x);

    /**
     * Backpropagates through the last forward (of this thread), accumulating into the parameters' gradients.
     *
     * @param dy dL/dy, shaped like the last forward's output
     * @return dL/dx, shaped like its input
     */
    Tensor backward(Tensor dy);

    /**
     * Forgets what this thread's last forward kept for its backward (inputs, masks, intermediate products), so that
     * the memory can be reclaimed before the next forward: after a backward, or when the forward is to be
     * recomputed (activation checkpointing). A backward then needs a new forward.
     */
    default void releaseActivations() {}

    /** {@return the trainable parameters, by name (live arrays); frozen weights are not listed} */
    default List<Parameter> parameters() {
        return List.of();
    }

    /**
     * Training mode (dropout on) or evaluation mode.
     *
     * @param mode true for training
     * @return this module
     */
    default Module train(boolean mode) {
        return this;
    }
}
