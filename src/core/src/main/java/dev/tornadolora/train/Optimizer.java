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
    protected final List<Parameter> params;
    protected double lr;
    protected long steps;

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

    /** Updates parameter {@code index} in place; {@link #steps} already counts this step. */
    protected abstract void update(int index, Parameter p);

    /** Zeroes every parameter's gradient ({@code zero_grad(set_to_none=False)}). */
    public void zeroGrad() {
        for (Parameter p : params) Arrays.fill(p.grad(), 0f);
    }

    public double lr() {
        return lr;
    }

    public void setLr(double lr) {
        requireNonNegative("learning rate", lr);
        this.lr = lr;
    }

    /** Steps taken so far (torch's {@code state['step']}). */
    public long stepCount() {
        return steps;
    }

    public List<Parameter> parameters() {
        return params;
    }

    /** Names of the buffers each parameter has ({@code exp_avg}, ...), in {@link #state()} order. */
    protected abstract List<String> bufferNames();

    /** The live buffer {@code buffer} of parameter {@code index}. */
    protected abstract float[] buffer(int index, String buffer);

    /** The per-parameter buffers by {@code <param>.<buffer>} (copies), e.g. {@code fc1.lora_a.weight.exp_avg}. */
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
