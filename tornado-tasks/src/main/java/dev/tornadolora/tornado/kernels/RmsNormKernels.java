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
 * Forward keeps r per row for the backward. The weight is frozen.
 */
public final class RmsNormKernels {
    private RmsNormKernels() {}

    public static void forward(FloatArray x, FloatArray w, FloatArray y, FloatArray invRms, int rows, int d,
                               float eps) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = r * d;
            float ss = 0f;
            for (int i = 0; i < d; i++) {
                float v = x.get(o + i);
                ss += v * v;
            }
            float inv = 1f / TornadoMath.sqrt(ss / d + eps);
            invRms.set(r, inv);
            for (int i = 0; i < d; i++) {
                y.set(o + i, w.get(i) * (x.get(o + i) * inv));
            }
        }
    }

    /** dx = r·(g − x·c); with {@code accumulate = 1} added to dx (the residual stream's gradient), else written. */
    public static void backward(FloatArray dy, FloatArray x, FloatArray w, FloatArray invRms, FloatArray dx, int rows,
                                int d, int accumulate) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = r * d;
            float inv = invRms.get(r);
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                dot += dy.get(o + i) * w.get(i) * x.get(o + i);
            }
            float c = dot * inv * inv / d;
            for (int i = 0; i < d; i++) {
                float v = inv * (dy.get(o + i) * w.get(i) - x.get(o + i) * c);
                if (accumulate == 1) {
                    v = v + dx.get(o + i);
                }
                dx.set(o + i, v);
            }
        }
    }
}
