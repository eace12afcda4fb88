package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * The device side of a training step: the MSE loss gradient and torch's AdamW update, so that adapters and their
 * optimizer state never leave the device between steps. Values that change every step (learning rate, bias
 * corrections) travel in the {@code step} array: scalar task arguments are compile-time constants.
 */
public final class TrainingKernels {
    /** Layout of the per-step array given to {@link #adamW}. */
    public static final int LR = 0;
    public static final int STEP_SIZE = 1;
    public static final int BIAS_CORRECTION2_SQRT = 2;
    public static final int STEP_VALUES = 3;

    private TrainingKernels() {}

    /** dy = 2 (y − target) / n: the gradient of mean((y − target)²). */
    public static void mseGradient(FloatArray y, FloatArray target, FloatArray dy, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            dy.set(i, 2f * (y.get(i) - target.get(i)) / n);
        }
    }

    /**
     * torch.optim.AdamW, one step (the single-tensor algorithm):
     * <pre>
     *   p ← p · (1 − lr · λ)
     *   m ← m + (1 − β1) · (g − m)           (lerp)
     *   v ← β2 · v + (1 − β2) · g²
     *   p ← p − stepSize · m / (√v / √bc2 + ε),   stepSize = lr / (1 − β1^t),  bc2 = 1 − β2^t
     * </pre>
     */
    public static void adamW(FloatArray p, FloatArray g, FloatArray m, FloatArray v, FloatArray step, int n,
                             float beta1, float beta2, float eps, float weightDecay) {
        for (@Parallel int i = 0; i < n; i++) {
            float lr = step.get(LR);
            float grad = g.get(i);
            float param = p.get(i) * (1f - lr * weightDecay);
            float mi = m.get(i) + (1f - beta1) * (grad - m.get(i));
            float vi = beta2 * v.get(i) + (1f - beta2) * grad * grad;
            float denom = (float) Math.sqrt(vi) / step.get(BIAS_CORRECTION2_SQRT) + eps;
            p.set(i, param - step.get(STEP_SIZE) * mi / denom);
            m.set(i, mi);
            v.set(i, vi);
        }
    }

    /** The sequential reference of {@link #adamW}: one step t (1-based) over plain arrays. */
    public static void adamWReference(float[] p, float[] g, float[] m, float[] v, float lr, int t, float beta1,
                                      float beta2, float eps, float weightDecay) {
        float stepSize = (float) (lr / (1 - Math.pow(beta1, t)));
        float bc2Sqrt = (float) Math.sqrt(1 - Math.pow(beta2, t));
        for (int i = 0; i < p.length; i++) {
            float param = p[i] * (1f - lr * weightDecay);
            m[i] = m[i] + (1f - beta1) * (g[i] - m[i]);
            v[i] = beta2 * v[i] + (1f - beta2) * g[i] * g[i];
            p[i] = param - stepSize * m[i] / ((float) Math.sqrt(v[i]) / bc2Sqrt + eps);
        }
    }

    /** The per-step values of AdamW at step t (1-based). */
    public static void fillStep(FloatArray step, float lr, int t, float beta1, float beta2) {
        step.set(LR, lr);
        step.set(STEP_SIZE, (float) (lr / (1 - Math.pow(beta1, t))));
        step.set(BIAS_CORRECTION2_SQRT, (float) Math.sqrt(1 - Math.pow(beta2, t)));
    }
}
