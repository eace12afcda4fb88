package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.jvm.JvmBackends;
import dev.tornadolora.math.Softmax;

/**
 * The few loops the Llama ops share: Vector API code ({@code VecSimd}) when {@code jdk.incubator.vector} is
 * readable, else the scalar loops here (the JVM backend falls back the same way). Every method states its scalar
 * meaning by its scalar path.
 */
public final class Vec {
    /** Whether the Vector API paths run (a capability of the JVM, not a setting). */
    static final boolean SIMD = JvmBackends.vectorApiReadable();

    /**
     * The loops of a softmax row ({@link Softmax}): the Vector API twins when readable (same max, same exp bits,
     * lanes summed in another order), else the definition, {@link Softmax#SCALAR}.
     */
    static final Softmax.Rows ROWS = SIMD ? VecSimd.ROWS : Softmax.SCALAR;

    private Vec() {}

    /** y[yo + i] += a · x[xo + i] for i &lt; n. */
    public static void axpy(int n, float a, float[] x, int xo, float[] y, int yo) {
        if (SIMD) {
            VecSimd.axpy(n, a, x, xo, y, yo);
            return;
        }
        for (int i = 0; i < n; i++) y[yo + i] = Math.fma(a, x[xo + i], y[yo + i]);
    }

    /** Σ x[xo + i]·y[yo + i] for i &lt; n. */
    public static float dot(int n, float[] x, int xo, float[] y, int yo) {
        if (SIMD) return VecSimd.dot(n, x, xo, y, yo);
        float s = 0f;
        for (int i = 0; i < n; i++) s = Math.fma(x[xo + i], y[yo + i], s);
        return s;
    }

    /** Σ x[xo + i]² for i &lt; n. */
    static float sumSquares(int n, float[] x, int xo) {
        return dot(n, x, xo, x, xo);
    }
}
