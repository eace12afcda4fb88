package dev.tornadolora.train;

import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An optimizer over a fixed list of {@link Parameter}s (live arrays), as {@code torch.optim.Optimizer} with one
 * parameter group. {@link #step()} updates every parameter in place from its gradient; the learning rate may be
 * changed between steps (by an {@link LrScheduler}).
 *
 * <p>Its state (moment buffers, step count) can be saved and restored by name so that a training run can resume
 * exactly: see {@link #state()} and {@link #loadState}.
 */
public abstract class Optimizer {
    /** The parameters it updates, in order. */
    protected final List<Parameter> params;
    /** The current learning rate. */
    protected double lr;
    /** Steps taken (torch's {@code state['step']}), counting the one being taken inside {@link #update}. */
    protected long steps;

    /**
     * An optimizer over the parameters, refusing an invalid rate with torch's message.
     *
     * @param params the parameters to update
     * @param lr     the learning rate
     */
    protected Optimizer(List<Parameter> params, double lr) {
        if (params.isEmpty()) {
            throw new IllegalArgumentException("optimizer got an empty parameter list");
        }
        requireNonNegative("learning rate", lr);
        this.params = List.copyOf(params);
        this.lr = lr;
    }

    /** One update of every parameter from its current gradient. */
    public final void step() {
        steps++;
        for (int i = 0; i < params.size(); i++) {
            update(i, params.get(i));
        }
    }

    /**
     * Updates one parameter in place; {@link #steps} already counts this step.
     *
     * @param index the parameter's position in {@link #params}
     * @param p     the parameter
     */
    protected abstract void update(int index, Parameter p);

    /** Zeroes every parameter's gradient ({@code zero_grad(set_to_none=False)}). */
    public void zeroGrad() {
        for (Parameter p : params) Arrays.fill(p.grad(), 0f);
    }

    /** {@return the current learning rate} */
    public double lr() {
        return lr;
    }

    /**
     * Sets the learning rate of the next steps (a scheduler calls this).
     *
     * @param lr the learning rate
     */
    public void setLr(double lr) {
        requireNonNegative("learning rate", lr);
        this.lr = lr;
    }

    /** {@return steps taken so far (torch's {@code state['step']})} */
    public long stepCount() {
        return steps;
    }

    /** {@return the parameters it updates, in order} */
    public List<Parameter> parameters() {
        return params;
    }

    /** {@return names of the buffers each parameter has ({@code exp_avg}, ...), in {@link #state()} order} */
    protected abstract List<String> bufferNames();

    /**
     * {@return the live buffer (not a copy)}
     *
     * @param index  the parameter's position
     * @param buffer one of {@link #bufferNames()}
     */
    protected abstract float[] buffer(int index, String buffer);

    /** {@return the per-parameter buffers by {@code <param>.<buffer>} (copies), e.g. {@code fc1.lora_a.weight.exp_avg}} */
    public final Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            for (String b : bufferNames()) {
                s.put(params.get(i).name() + "." + b, new Tensor(params.get(i).shape(), buffer(i, b).clone()));
            }
        }
        return s;
    }

    /**
     * Restores buffers saved by {@link #state()} and the step count; every buffer must be present with its
     * parameter's shape, and nothing else may be given.
     *
     * @param state     the buffers, as {@link #state()} returns them
     * @param stepCount the steps taken when they were saved
     */
    public void loadState(Map<String, Tensor> state, long stepCount) {
        if (stepCount < 0) {
            throw new IllegalArgumentException("optimizer step count must be non-negative, got " + stepCount);
        }
        Map<String, Tensor> rest = new LinkedHashMap<>(state);
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            for (String b : bufferNames()) {
                String key = p.name() + "." + b;
                Tensor t = rest.remove(key);
                if (t == null) {
                    throw new IllegalArgumentException("optimizer state: missing buffer '" + key + "'");
                }
                Shapes.requireEqual("optimizer state '" + key + "'", t.shape(), p.shape());
                System.arraycopy(t.data(), 0, buffer(i, b), 0, p.numel());
            }
        }
        if (!rest.isEmpty()) {
            throw new IllegalArgumentException("optimizer state: unexpected buffers " + rest.keySet());
        }
        this.steps = stepCount;
    }

    static void requireNonNegative(String what, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException("Invalid " + what + ": " + v);
        }
    }
}
