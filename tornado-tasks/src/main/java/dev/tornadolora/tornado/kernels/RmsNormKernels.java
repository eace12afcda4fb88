package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Hugging Face's {@code LlamaRMSNorm} on the device, one work-item per row of length d; the math and its JVM twin
 * are {@code dev.tornadolora.llama.ops.RmsNorm}:
 * <pre>
 *   r  = 1 / √(mean(x²) + ε)          y = w ⊙ (x · r)
 *   dx = r · (g − x · c),   g = dy ⊙ w,   c = r² · mean(g ⊙ x)
 * </pre>
 * Forward keeps r per row for the backward. The weight is frozen. Each kernel takes the residual add that meets
 * it (forward: x + residual; backward: dy + dy2) as an option, so that the add costs no launch of its own.
 */
public final class RmsNormKernels {
    private RmsNormKernels() {}

    /**
     * y = w ⊙ (x · r); with {@code addResidual = 1} x first becomes x + residual, stored back into x (the residual
     * stream's add, which the norm after it reads: one launch for both, the same sums as the add then the norm).
     */
    public static void forward(FloatArray x, FloatArray residual, FloatArray w, FloatArray y, FloatArray invRms,
                               int rows, int d, float eps, int addResidual) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = r * d;
            float ss = 0f;
            for (int i = 0; i < d; i++) {
                float v = x.get(o + i);
                if (addResidual == 1) {
                    v = v + residual.get(o + i);
                    x.set(o + i, v);
                }
                ss += v * v;
            }
            float inv = 1f / TornadoMath.sqrt(ss / d + eps);
            invRms.set(r, inv);
            for (int i = 0; i < d; i++) {
                y.set(o + i, w.get(i) * (x.get(o + i) * inv));
            }
        }
    }

    /**
     * dx = r·(g − x·c) for the incoming gradient dy, or with {@code addSecond = 1} dy + dy2 (two branches' sums met
     * here, added as an add launch before would: one launch less); with {@code accumulate = 1} added to dx (the
     * residual stream's gradient), else written.
     */
    public static void backward(FloatArray dy, FloatArray dy2, FloatArray x, FloatArray w, FloatArray invRms,
                                FloatArray dx, int rows, int d, int accumulate, int addSecond) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = r * d;
            float inv = invRms.get(r);
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                float gi = dy.get(o + i);
                if (addSecond == 1) {
                    gi = gi + dy2.get(o + i);
                }
                dot += gi * w.get(i) * x.get(o + i);
            }
            float c = dot * inv * inv / d;
            for (int i = 0; i < d; i++) {
                float gi = dy.get(o + i);
                if (addSecond == 1) {
                    gi = gi + dy2.get(o + i);
                }
                float v = inv * (gi * w.get(i) - x.get(o + i) * c);
                if (accumulate == 1) {
                    v = v + dx.get(o + i);
                }
                dx.set(o + i, v);
            }
        }
    }
}
