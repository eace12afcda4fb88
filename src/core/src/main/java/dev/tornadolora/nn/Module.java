package dev.tornadolora.nn;

import dev.tornadolora.tensor.Tensor;

import java.util.List;

/**
 * A differentiable block in the style of {@code torch.nn.Module}, reduced to what training needs: forward keeps
 * what its backward will need, backward takes dL/dy and returns dL/dx while accumulating the gradients of the
 * module's trainable {@link Parameter}s. One forward, then at most one backward, per step and thread.
 */
public interface Module {

    Tensor forward(Tensor x);

    /** dL/dx of the last forward, given dL/dy; accumulates into the parameters' gradients. */
    Tensor backward(Tensor dy);

    /** The trainable parameters, by name (live arrays). Frozen weights are not listed. */
    default List<Parameter> parameters() {
        return List.of();
    }

    /** Training mode (dropout on) or evaluation mode. */
    default Module train(boolean mode) {
        return this;
    }
}
