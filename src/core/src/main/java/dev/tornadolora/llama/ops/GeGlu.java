package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.GeluTanh;

/**
 * The gated activation of Gemma's MLP, {@code down(gelu_tanh(gate(x)) · up(x))} without the projections, with the
 * one GELU-tanh, {@link GeluTanh}:
 * <pre>
 *   a  = gelu(g) · u
 *   dg = gelu'(g) · (da · u) = GeluTanh.backward(da · u, g),      du = da · gelu(g)
 * </pre>
 */
public final class GeGlu {
    private static final int GRAIN = 4096;

    private GeGlu() {}

    public static void forward(Parallel par, float[] g, float[] u, float[] a) {
        par.range(a.length, GRAIN, (i0, i1) -> {
            for (int i = i0; i < i1; i++) a[i] = GeluTanh.gelu(g[i]) * u[i];
        });
    }

    /** dg and du (overwritten) from da. */
    public static void backward(Parallel par, float[] da, float[] g, float[] u, float[] dg, float[] du) {
        par.range(da.length, GRAIN, (i0, i1) -> {
            for (int i = i0; i < i1; i++) {
                dg[i] = GeluTanh.backward(da[i] * u[i], g[i]);
                du[i] = da[i] * GeluTanh.gelu(g[i]);
            }
        });
    }

    /** gelu_tanh(g)·u in double, in PyTorch's form 0.5·g·(1 + tanh(√(2/π)(g + 0.044715 g³))). */
    public static double[] forwardReference(double[] g, double[] u) {
        double[] a = new double[g.length];
        for (int i = 0; i < a.length; i++) a[i] = geluReference(g[i]) * u[i];
        return a;
    }

    static double geluReference(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }
}
