package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;


/**
 * The gated activation of Llama's MLP, {@code down(silu(gate(x)) · up(x))} without the projections:
 * <pre>
 *   a  = silu(g) · u,       silu(g) = g · σ(g)
 *   dg = da · u · σ(g) · (1 + g · (1 − σ(g))),      du = da · silu(g)
 * </pre>
 */
public final class SwiGlu {
    private static final int GRAIN = 4096;

    private SwiGlu() {}

    public static void forward(Parallel par, float[] g, float[] u, float[] a) {
        par.range(a.length, GRAIN, (i0, i1) -> {
            int i = Vec.SIMD ? VecSimd.swiGluForward(g, u, a, i0, i1) : i0;
            for (; i < i1; i++) {
                float s = sigmoid(g[i]);
                a[i] = g[i] * s * u[i];
            }
        });
    }


    /** dg and du (overwritten) from da. */
    public static void backward(Parallel par, float[] da, float[] g, float[] u, float[] dg, float[] du) {
        par.range(da.length, GRAIN, (i0, i1) -> {
            int i = Vec.SIMD ? VecSimd.swiGluBackward(da, g, u, dg, du, i0, i1) : i0;
            for (; i < i1; i++) {
                float x = g[i], s = sigmoid(x);
                dg[i] = da[i] * u[i] * s * (1f + x * (1f - s));
                du[i] = da[i] * x * s;
            }
        });
    }

    private static float sigmoid(float x) {
        return 1f / (Vec.exp(-x) + 1f);
    }

    public static double[] forwardReference(double[] g, double[] u) {
        double[] a = new double[g.length];
        for (int i = 0; i < a.length; i++) a[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        return a;
    }

    /** {dg, du}. */
    public static double[][] backwardReference(double[] da, double[] g, double[] u) {
        double[] dg = new double[g.length], du = new double[g.length];
        for (int i = 0; i < g.length; i++) {
            double s = 1 / (1 + Math.exp(-g[i]));
            dg[i] = da[i] * u[i] * s * (1 + g[i] * (1 - s));
            du[i] = da[i] * g[i] * s;
        }
        return new double[][] {dg, du};
    }
}
