package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.Silu;


/**
 * The gated activation of Llama's MLP, {@code down(silu(gate(x)) · up(x))} without the projections, with the one
 * SiLU, {@link Silu} (the Vector API path does its operations lane-wise: the same bits):
 * <pre>
 *   a  = silu(g) · u,       silu(g) = g · σ(g)
 *   dg = silu'(g) · (da · u) = Silu.backward(da · u, g),      du = da · silu(g)
 * </pre>
 */
public final class SwiGlu {
    private static final int GRAIN = 4096;

    private SwiGlu() {}

    public static void forward(Parallel par, float[] g, float[] u, float[] a) {
        par.range(a.length, GRAIN, (i0, i1) -> {
            int i = Vec.SIMD ? VecSimd.swiGluForward(g, u, a, i0, i1) : i0;
            for (; i < i1; i++) a[i] = Silu.silu(g[i]) * u[i];
        });
    }


    /** dg and du (overwritten) from da. */
    public static void backward(Parallel par, float[] da, float[] g, float[] u, float[] dg, float[] du) {
        par.range(da.length, GRAIN, (i0, i1) -> {
            int i = Vec.SIMD ? VecSimd.swiGluBackward(da, g, u, dg, du, i0, i1) : i0;
            for (; i < i1; i++) {
                dg[i] = Silu.backward(da[i] * u[i], g[i]);
                du[i] = da[i] * Silu.silu(g[i]);
            }
        });
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
