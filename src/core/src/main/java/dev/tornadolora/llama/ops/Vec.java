package dev.tornadolora.llama.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** The few Vector API loops the Llama ops share; each has the scalar loop it replaces in its comment. */
public final class Vec {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();

    private Vec() {}

    /** y[yo + i] += a · x[xo + i] for i &lt; n. */
    public static void axpy(int n, float a, float[] x, int xo, float[] y, int yo) {
        int i = 0;
        FloatVector va = FloatVector.broadcast(F, a);
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector.fromArray(F, x, xo + i).fma(va, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            y[yo + i] = Math.fma(a, x[xo + i], y[yo + i]);
        }
    }

    /** Σ x[xo + i]·y[yo + i] for i &lt; n, lanes summed in a fixed order (the same result in every JIT tier). */
    public static float dot(int n, float[] x, int xo, float[] y, int yo) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        for (int bound = F.loopBound(n); i < bound; i += L) {
            acc = FloatVector.fromArray(F, x, xo + i).fma(FloatVector.fromArray(F, y, yo + i), acc);
        }
        float s = 0f;
        for (int l = 0; l < L; l++) {
            s += acc.lane(l);
        }
        for (; i < n; i++) {
            s = Math.fma(x[xo + i], y[yo + i], s);
        }
        return s;
    }

    /**
     * x[xo + i] = exp(x[xo + i]·mul − sub) for i &lt; n, returning their sum (lanes summed in a fixed order). The
     * vector exp is the JDK's (SVML on x86), within an ulp or two of {@code Math.exp}.
     */
    static float expInPlace(int n, float[] x, int xo, float mul, float sub) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F), vm = FloatVector.broadcast(F, mul), vs = FloatVector.broadcast(F, sub);
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector e = FloatVector.fromArray(F, x, xo + i).fma(vm, vs.neg()).lanewise(VectorOperators.EXP);
            e.intoArray(x, xo + i);
            acc = acc.add(e);
        }
        float s = 0f;
        for (int l = 0; l < L; l++) s += acc.lane(l);
        for (; i < n; i++) {
            x[xo + i] = (float) Math.exp(Math.fma(x[xo + i], mul, -sub));
            s += x[xo + i];
        }
        return s;
    }

    /** Σ x[xo + i]² for i &lt; n. */
    static float sumSquares(int n, float[] x, int xo) {
        return dot(n, x, xo, x, xo);
    }

    /** max x[xo + i] for i &lt; n (n ≥ 1). */
    static float max(int n, float[] x, int xo) {
        int i = 0;
        float m = Float.NEGATIVE_INFINITY;
        if (n >= L) {
            FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (int bound = F.loopBound(n); i < bound; i += L) {
                acc = acc.max(FloatVector.fromArray(F, x, xo + i));
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) {
            m = Math.max(m, x[xo + i]);
        }
        return m;
    }
}
