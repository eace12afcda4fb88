package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.jvm.Parallel;
import jdk.incubator.vector.FloatVector;

import static dev.tornadolora.llama.ops.Vec.F;
import static dev.tornadolora.llama.ops.Vec.L;

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

    public static void forward(float[] g, float[] u, float[] a) {
        Parallel.forRange(a.length, GRAIN, (i0, i1) -> {
            int i = i0;
            for (int bound = i0 + F.loopBound(i1 - i0); i < bound; i += L) {
                FloatVector x = FloatVector.fromArray(F, g, i);
                x.mul(sigmoid(x)).mul(FloatVector.fromArray(F, u, i)).intoArray(a, i);
            }
            for (; i < i1; i++) {
                float s = sigmoid(g[i]);
                a[i] = g[i] * s * u[i];
            }
        });
    }

    /** σ(x) = 1 / (1 + exp(−x)), lane-wise. */
    private static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(F, 1f).div(Vec.exp(x.neg()).add(1f));
    }

    /** dg and du (overwritten) from da. */
    public static void backward(float[] da, float[] g, float[] u, float[] dg, float[] du) {
        Parallel.forRange(da.length, GRAIN, (i0, i1) -> {
            int i = i0;
            for (int bound = i0 + F.loopBound(i1 - i0); i < bound; i += L) {
                FloatVector x = FloatVector.fromArray(F, g, i), s = sigmoid(x), d = FloatVector.fromArray(F, da, i);
                FloatVector one = FloatVector.broadcast(F, 1f);
                d.mul(FloatVector.fromArray(F, u, i)).mul(s).mul(one.add(x.mul(one.sub(s)))).intoArray(dg, i);
                d.mul(x).mul(s).intoArray(du, i);
            }
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
