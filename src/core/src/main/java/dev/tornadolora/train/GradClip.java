package dev.tornadolora.train;

import dev.tornadolora.nn.Parameter;

import java.util.List;

/** Gradient clipping as {@code torch.nn.utils.clip_grad_norm_} with the 2-norm. */
public final class GradClip {
    private GradClip() {}

    /**
     * Scales all gradients together so that their global 2-norm is at most {@code maxNorm}:
     * <pre>
     *   n = ‖(‖g₁‖, ‖g₂‖, ...)‖₂,   g ← g · min(1, maxNorm / (n + 1e-6))
     * </pre>
     * Returns n, the norm before clipping (NaN or infinite when a gradient is; the gradients are then scaled
     * by NaN or 0 as torch does with {@code error_if_nonfinite=False}).
     */
    public static double clipGradNorm(List<Parameter> params, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("max_norm must be positive, got " + maxNorm);
        }
        double total = globalNorm(params);
        float coef = (float) Math.min(1.0, maxNorm / (total + 1e-6));
        for (Parameter p : params) {
            float[] g = p.grad();
            for (int i = 0; i < g.length; i++) g[i] *= coef;
        }
        return total;
    }

    /** The 2-norm of all gradients taken as one vector, accumulated in double. */
    public static double globalNorm(List<Parameter> params) {
        double sumSq = 0;
        for (Parameter p : params) {
            double s = 0;
            for (float v : p.grad()) s += (double) v * v;
            double norm = (float) Math.sqrt(s);  // each per-parameter norm is an fp32 tensor in torch
            sumSq += norm * norm;
        }
        return (float) Math.sqrt(sumSq);
    }
}
