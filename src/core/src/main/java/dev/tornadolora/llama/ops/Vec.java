package dev.tornadolora.llama.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
     * x[xo + i] = exp(x[xo + i]·mul − sub) for i &lt; n, returning their sum (lanes summed in a fixed order), with
     * {@link #exp(FloatVector)}: the same bits in every JIT tier and for vector lanes and scalar tails alike.
     */
    static float expInPlace(int n, float[] x, int xo, float mul, float sub) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F), vm = FloatVector.broadcast(F, mul), vs = FloatVector.broadcast(F, -sub);
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector e = exp(FloatVector.fromArray(F, x, xo + i).fma(vm, vs));
            e.intoArray(x, xo + i);
            acc = acc.add(e);
        }
        float s = 0f;
        for (int l = 0; l < L; l++) s += acc.lane(l);
        for (; i < n; i++) {
            x[xo + i] = exp(Math.fma(x[xo + i], mul, -sub));
            s += x[xo + i];
        }
        return s;
    }

    private static final float LOG2E = 1.44269504f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float MIN_X = -87.3f, MAX_X = 88.3f;
    private static final float[] TAYLOR = {1f / 5040, 1f / 720, 1f / 120, 1f / 24, 1f / 6, 0.5f, 1f, 1f};

    /**
     * exp in fp32 from +, ×, fma and bit operations only, so that it gives one result whether interpreted, C1 or C2
     * compiled (the JDK's vector exp is an SVML intrinsic in C2 and Math.exp per lane before, which round
     * differently): x clamped to [−87.3, 88.3], x = k·ln2 + r (Cody–Waite, |r| ≤ ln2/2), e^r by its Taylor
     * polynomial to r⁷ (error below 1e-8 relative), times 2^k built in the exponent bits. Within 2 ulp of exp.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(MIN_X).min(MAX_X);
        // floor(x·log2e + 0.5) by truncating a positive number (x·log2e + 0.5 + 126 > 0 in the clamped range)
        IntVector k = x.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, 126.5f))
                .convert(VectorOperators.F2I, 0).reinterpretAsInts().sub(126);
        FloatVector kf = (FloatVector) k.convert(VectorOperators.I2F, 0);
        FloatVector r = kf.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = kf.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(F, TAYLOR[0]);
        for (int t = 1; t < TAYLOR.length; t++) {
            p = p.fma(r, FloatVector.broadcast(F, TAYLOR[t]));
        }
        FloatVector scale = k.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(scale);
    }

    /** The scalar twin of {@link #exp(FloatVector)}: the same operations, so the same bits. */
    static float exp(float x) {
        x = Math.min(Math.max(x, MIN_X), MAX_X);
        int k = (int) Math.fma(x, LOG2E, 126.5f) - 126;
        float kf = k;
        float r = Math.fma(kf, -LN2_HI, x);
        r = Math.fma(kf, -LN2_LO, r);
        float p = TAYLOR[0];
        for (int t = 1; t < TAYLOR.length; t++) {
            p = Math.fma(p, r, TAYLOR[t]);
        }
        return p * Float.intBitsToFloat((k + 127) << 23);
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
