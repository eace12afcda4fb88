package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The end of a step on the device, over all trainable tensors held end to end in one flat array each (parameters,
 * gradients, and AdamW's two moments); tensor i spans [offsets[i], offsets[i + 1]). Their JVM twins are
 * {@code dev.tornadolora.train.GradClip} and {@code dev.tornadolora.train.AdamW}:
 * <pre>
 *   n_i = ‖g_i‖₂,   n = ‖(n_1, n_2, ...)‖₂,   g ← g · min(1, maxNorm / (n + 1e-6))     (clip_grad_norm_)
 *   θ ← θ·(1 − lr·λ);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   θ ← θ − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)                                   (torch.optim.AdamW)
 * </pre>
 * What changes per step (the schedule's lr and the bias corrections) comes in {@code hyper}, computed by the host
 * in double as the JVM twin computes it: hyper[0] = 1 − lr·λ, hyper[1] = −lr/(1 − β1ᵗ), hyper[2] = √(1 − β2ᵗ).
 * {@code stats} receives the norm n (stats[0]) and the clip factor (stats[1]).
 */
public final class OptimizerKernels {
    private OptimizerKernels() {}

    /** norms[i] = ‖g_i‖₂, one work-item per tensor. */
    public static void tensorNorms(FloatArray grads, IntArray offsets, FloatArray norms, int tensors) {
        for (@Parallel int i = 0; i < tensors; i++) {
            float s = 0f;
            int end = offsets.get(i + 1);
            for (int e = offsets.get(i); e < end; e++) {
                float g = grads.get(e);
                s += g * g;
            }
            norms.set(i, TornadoMath.sqrt(s));
        }
    }

    /** stats[0] = n, stats[1] = min(1, maxNorm / (n + 1e-6)), or 1 without clipping ({@code clip = 0}). */
    public static void clipFactor(FloatArray norms, FloatArray stats, int tensors, float maxNorm, int clip) {
        float s = 0f;
        for (int i = 0; i < tensors; i++) {
            float n = norms.get(i);
            s += n * n;
        }
        float total = TornadoMath.sqrt(s);
        stats.set(0, total);
        float factor = 1f;
        if (clip == 1) {
            factor = TornadoMath.min(1f, maxNorm / (total + 1e-6f));
        }
        stats.set(1, factor);
    }

    /** g ← g · stats[1]. */
    public static void scale(FloatArray grads, FloatArray stats, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            grads.set(i, grads.get(i) * stats.get(1));
        }
    }

    public static void adamW(FloatArray theta, FloatArray grads, FloatArray m, FloatArray v, FloatArray hyper, int n,
                             float beta1, float beta2, float oneMinusBeta1, float oneMinusBeta2, float eps) {
        for (@Parallel int i = 0; i < n; i++) {
            float g = grads.get(i);
            float mi = m.get(i) * beta1 + oneMinusBeta1 * g;
            float vi = v.get(i) * beta2 + oneMinusBeta2 * g * g;
            m.set(i, mi);
            v.set(i, vi);
            float denom = TornadoMath.sqrt(vi) / hyper.get(2) + eps;
            theta.set(i, theta.get(i) * hyper.get(0) + hyper.get(1) * (mi / denom));
        }
    }

    /**
     * hyper for step t (counting the step being taken) of AdamW(lr, β1, β2, λ), in double as {@code train.AdamW}
     * computes it; the host writes these three floats before the optimizer graph runs.
     */
    public static void hyper(double lr, double beta1, double beta2, double weightDecay, long step, FloatArray hyper) {
        hyper.set(0, (float) (1 - lr * weightDecay));
        hyper.set(1, (float) -(lr / (1 - Math.pow(beta1, step))));
        hyper.set(2, (float) Math.sqrt(1 - Math.pow(beta2, step)));
    }

    /** a = 0 over the first n elements (gradients before a step's first micro-batch). */
    public static void zero(FloatArray a, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(i, 0f);
        }
    }
}
