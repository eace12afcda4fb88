package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.jvm.JvmBackends;

/**
 * The few loops the Llama ops share: Vector API code ({@code VecSimd}) when {@code jdk.incubator.vector} is
 * readable, else the scalar loops here (the JVM backend falls back the same way). Every method states its scalar
 * meaning by its scalar path.
 */
public final class Vec {
    /** Whether the Vector API paths run (a capability of the JVM, not a setting). */
    static final boolean SIMD = JvmBackends.vectorApiReadable();

    static final float LOG2E = 1.44269504f;
    static final float LN2_HI = 0.693359375f;
    static final float LN2_LO = -2.12194440e-4f;
    static final float MIN_X = -87.3f, MAX_X = 88.3f;
    static final float[] TAYLOR = {1f / 5040, 1f / 720, 1f / 120, 1f / 24, 1f / 6, 0.5f, 1f, 1f};

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

    /** max x[xo + i] for i &lt; n (n ≥ 1). */
    static float max(int n, float[] x, int xo) {
        if (SIMD) return VecSimd.max(n, x, xo);
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    /** x[xo + i] = exp(x[xo + i]·mul − sub) for i &lt; n, returning their sum; {@link #exp(float)} per element. */
    static float expInPlace(int n, float[] x, int xo, float mul, float sub) {
        if (SIMD) return VecSimd.expInPlace(n, x, xo, mul, sub);
        float s = 0f;
        for (int i = 0; i < n; i++) {
            x[xo + i] = exp(Math.fma(x[xo + i], mul, -sub));
            s += x[xo + i];
        }
        return s;
    }

    /**
     * exp in fp32 from +, ×, fma and bit operations only, so that it gives one result whether interpreted, C1 or C2
     * compiled (the JDK's vector exp is an SVML intrinsic in C2 and Math.exp per lane before, which round
     * differently): x clamped to [−87.3, 88.3], x = k·ln2 + r (Cody–Waite, |r| ≤ ln2/2), e^r by its Taylor
     * polynomial to r⁷ (error below 1e-8 relative), times 2^k built in the exponent bits. Within 2 ulp of exp.
     * {@code VecSimd.exp} is its lane-wise twin: the same operations, so the same bits.
     */
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
}
