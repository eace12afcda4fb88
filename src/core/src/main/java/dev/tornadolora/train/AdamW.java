package dev.tornadolora.train;

import dev.tornadolora.nn.Parameter;

import java.util.List;

/**
 * Adam with decoupled weight decay, as {@code torch.optim.AdamW} (defaults lr = 1e-3, betas = (0.9, 0.999),
 * eps = 1e-8, weight_decay = 0.01, no amsgrad). At step t, for each parameter θ with gradient g:
 * <pre>
 *   θ ← θ · (1 − lr·λ)
 *   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 *   θ ← θ − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
 * </pre>
 * Buffers are fp32 like torch's; the bias corrections are computed in double as torch computes them in Python.
 */
public final class AdamW extends Optimizer {
    public static final double DEFAULT_LR = 1e-3;
    public static final double DEFAULT_BETA1 = 0.9;
    public static final double DEFAULT_BETA2 = 0.999;
    public static final double DEFAULT_EPS = 1e-8;
    public static final double DEFAULT_WEIGHT_DECAY = 0.01;

    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final float[][] expAvg;
    private final float[][] expAvgSq;

    public AdamW(List<Parameter> params) {
        this(params, DEFAULT_LR);
    }

    public AdamW(List<Parameter> params, double lr) {
        this(params, lr, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_WEIGHT_DECAY);
    }

    public AdamW(List<Parameter> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
        super(params, lr);
        requireNonNegative("epsilon value", eps);
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("Invalid beta parameter at index 0: " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("Invalid beta parameter at index 1: " + beta2);
        requireNonNegative("weight_decay value", weightDecay);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.expAvg = new float[this.params.size()][];
        this.expAvgSq = new float[this.params.size()][];
        for (int i = 0; i < this.params.size(); i++) {
            expAvg[i] = new float[this.params.get(i).numel()];
            expAvgSq[i] = new float[this.params.get(i).numel()];
        }
    }

    @Override
    protected void update(int index, Parameter p) {
        float[] theta = p.data(), g = p.grad(), m = expAvg[index], v = expAvgSq[index];
        float decay = (float) (1 - lr * weightDecay);
        float b1 = (float) beta1, b2 = (float) beta2, c1 = (float) (1 - beta1), c2 = (float) (1 - beta2);
        double stepSize = lr / (1 - Math.pow(beta1, steps));
        double bias2Sqrt = Math.sqrt(1 - Math.pow(beta2, steps));
        float negStep = (float) -stepSize, bias2SqrtF = (float) bias2Sqrt, epsF = (float) eps;
        for (int i = 0; i < theta.length; i++) {
            float gi = g[i];
            m[i] = m[i] * b1 + c1 * gi;
            v[i] = v[i] * b2 + c2 * gi * gi;
            float denom = (float) Math.sqrt(v[i]) / bias2SqrtF + epsF;
            theta[i] = theta[i] * decay + negStep * (m[i] / denom);
        }
    }

    @Override
    protected List<String> bufferNames() {
        return List.of("exp_avg", "exp_avg_sq");
    }

    @Override
    protected float[] buffer(int index, String buffer) {
        return buffer.equals("exp_avg") ? expAvg[index] : expAvgSq[index];
    }
}
