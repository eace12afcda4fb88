package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;

/**
 * Hugging Face's {@code LlamaRMSNorm} over rows of length d, statistics in fp32:
 * <pre>
 *   r   = 1 / √(mean(x²) + ε)                 per row
 *   y   = w ⊙ (x · r)
 *   dx  = r · (g − x̂ · mean(g ⊙ x̂)),   g = dy ⊙ w,  x̂ = x · r
 * </pre>
 * The weight w is frozen (no gradient). {@link #forward}/{@link #backward} are the fast path (Vector API, rows
 * over the device's threads); {@link #forwardReference}/{@link #backwardReference} the scalar statement of the math in double.
 */
public final class RmsNorm {
    private RmsNorm() {}

    /** y = w ⊙ x·r row by row; writes r (one per row) to {@code invRms} when it is not null. */
    public static void forward(Parallel par, float[] x, float[] w, int rows, int d, float eps, float[] y, float[] invRms) {
        par.range(rows, Math.max(1, 16384 / d), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int o = r * d;
                float ms = Vec.sumSquares(d, x, o) / d;
                float inv = (float) (1.0 / Math.sqrt(ms + eps));
                if (invRms != null) invRms[r] = inv;
                for (int i = 0; i < d; i++) {
                    y[o + i] = w[i] * (x[o + i] * inv);
                }
            }
        });
    }

    /** dx (+)= r·(g − x̂·mean(g⊙x̂)); with {@code accumulate} the result is added to dx (a residual branch). */
    public static void backward(Parallel par, float[] dy, float[] x, float[] w, float[] invRms, int rows, int d, float[] dx,
                                boolean accumulate) {
        par.range(rows, Math.max(1, 16384 / d), (r0, r1) -> {
            float[] g = new float[d];
            for (int r = r0; r < r1; r++) {
                int o = r * d;
                float inv = invRms[r];
                for (int i = 0; i < d; i++) g[i] = dy[o + i] * w[i];
                float c = Vec.dot(d, g, 0, x, o) * inv * inv / d;
                for (int i = 0; i < d; i++) {
                    float v = inv * (g[i] - x[o + i] * c);
                    dx[o + i] = accumulate ? dx[o + i] + v : v;
                }
            }
        });
    }

    /** The scalar statement of {@link #forward}, in double. */
    public static double[] forwardReference(double[] x, double[] w, int rows, int d, double eps) {
        double[] y = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            double ms = 0;
            for (int i = 0; i < d; i++) ms += x[r * d + i] * x[r * d + i];
            double inv = 1 / Math.sqrt(ms / d + eps);
            for (int i = 0; i < d; i++) y[r * d + i] = w[i] * x[r * d + i] * inv;
        }
        return y;
    }

    /** The scalar statement of {@link #backward} (not accumulating), in double. */
    public static double[] backwardReference(double[] dy, double[] x, double[] w, int rows, int d, double eps) {
        double[] dx = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            double ms = 0;
            for (int i = 0; i < d; i++) ms += x[r * d + i] * x[r * d + i];
            double inv = 1 / Math.sqrt(ms / d + eps);
            double c = 0;
            for (int i = 0; i < d; i++) c += dy[r * d + i] * w[i] * x[r * d + i] * inv;
            c /= d;
            for (int i = 0; i < d; i++) dx[r * d + i] = inv * (dy[r * d + i] * w[i] - x[r * d + i] * inv * c);
        }
        return dx;
    }
}
