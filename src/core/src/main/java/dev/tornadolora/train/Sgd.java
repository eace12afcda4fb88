package dev.tornadolora.train;

import dev.tornadolora.nn.Parameter;

import java.util.List;

/**
 * Stochastic gradient descent with momentum, as {@code torch.optim.SGD}:
 * <pre>
 *   g ← g + λ·θ                                      (weight decay, coupled)
 *   b ← g at the first step, else μ·b + (1 − dampening)·g
 *   g ← g + μ·b  (nesterov)   or   g ← b
 *   θ ← θ − lr·g
 * </pre>
 * With momentum 0 there is no buffer and the update is plain θ ← θ − lr·g.
 */
public final class Sgd extends Optimizer {
    private final double momentum;
    private final double dampening;
    private final double weightDecay;
    private final boolean nesterov;
    private final float[][] momentumBuffer;

    public Sgd(List<Parameter> params, double lr) {
        this(params, lr, 0, 0, 0, false);
    }

    public Sgd(List<Parameter> params, double lr, double momentum, double dampening, double weightDecay,
               boolean nesterov) {
        super(params, lr);
        requireNonNegative("momentum value", momentum);
        requireNonNegative("weight_decay value", weightDecay);
        if (!Double.isFinite(dampening)) throw new IllegalArgumentException("Invalid dampening value: " + dampening);
        if (nesterov && (momentum <= 0 || dampening != 0)) {
            // torch raises ValueError with this text.
            throw new IllegalArgumentException("Nesterov momentum requires a momentum and zero dampening");
        }
        this.momentum = momentum;
        this.dampening = dampening;
        this.weightDecay = weightDecay;
        this.nesterov = nesterov;
        this.momentumBuffer = new float[this.params.size()][];
        if (momentum != 0) {
            for (int i = 0; i < this.params.size(); i++) momentumBuffer[i] = new float[this.params.get(i).numel()];
        }
    }

    @Override
    protected void update(int index, Parameter p) {
        float[] theta = p.data(), grad = p.grad(), buf = momentumBuffer[index];
        float wd = (float) weightDecay, mu = (float) momentum, keep = (float) (1 - dampening), rate = (float) lr;
        boolean first = steps == 1;
        for (int i = 0; i < theta.length; i++) {
            float g = weightDecay != 0 ? grad[i] + wd * theta[i] : grad[i];
            if (buf != null) {
                buf[i] = first ? g : buf[i] * mu + keep * g;
                g = nesterov ? g + mu * buf[i] : buf[i];
            }
            theta[i] = theta[i] - rate * g;
        }
    }

    @Override
    protected List<String> bufferNames() {
        return momentum != 0 ? List.of("momentum_buffer") : List.of();
    }

    @Override
    protected float[] buffer(int index, String buffer) {
        return momentumBuffer[index];
    }
}
