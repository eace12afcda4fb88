package dev.tornadolora.llama.ops;

import dev.tornadolora.math.Exp;
import dev.tornadolora.math.Silu;
import dev.tornadolora.math.Softmax;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Llama ops' Vector API code, the only class of theirs that touches {@code jdk.incubator.vector}: loaded
 * through {@link Vec} only when the module is readable ({@code --add-modules jdk.incubator.vector}).
 */
final class VecSimd {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();

    private VecSimd() {}

    /** {@link Softmax.Rows} in vector lanes: the same max and exp bits as {@link Softmax#SCALAR}, summed by lanes. */
    static final Softmax.Rows ROWS = new Softmax.Rows() {
        @Override
        public float max(int n, float[] x, int xo) {
            return VecSimd.max(n, x, xo);
        }

        @Override
        public float expInPlace(int n, float[] x, int xo, float mul, float sub) {
            return VecSimd.expInPlace(n, x, xo, mul, sub);
        }

        @Override
        public String toString() {
            return "vector " + L + " lanes";
        }
    };

    /** y[yo + i] += a · x[xo + i] for i &lt; n. */
    static void axpy(int n, float a, float[] x, int xo, float[] y, int yo) {
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
    static float dot(int n, float[] x, int xo, float[] y, int yo) {
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
     * {@link #exp(FloatVector)}: the same bits as {@link Softmax#term} in every JIT tier, for vector lanes and
     * scalar tails alike; only the order of the sum differs from {@link Softmax#SCALAR}.
     */
    static float expInPlace(int n, float[] x, int xo, float mul, float sub) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector e = exp(FloatVector.fromArray(F, x, xo + i).mul(mul).sub(sub));
            e.intoArray(x, xo + i);
            acc = acc.add(e);
        }
        float s = 0f;
        for (int l = 0; l < L; l++) s += acc.lane(l);
        for (; i < n; i++) {
            x[xo + i] = Softmax.term(x[xo + i], mul, sub);
            s += x[xo + i];
        }
        return s;
    }

    /**
     * {@link Exp#exp} lane-wise: the same operations in the same order, so the same bits (ExpTest); 2^k is
     * written in the exponent bits, which gives {@link Exp#pow2}'s exact value.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(Exp.MIN_X).min(Exp.MAX_X);
        // floor(x·log2e + 0.5) by truncating a positive number (x·log2e + 0.5 + 126 > 0 in the clamped range)
        IntVector k = x.mul(Exp.LOG2E).add(126.5f).convert(VectorOperators.F2I, 0).reinterpretAsInts().sub(126);
        FloatVector kf = (FloatVector) k.convert(VectorOperators.I2F, 0);
        FloatVector r = x.sub(kf.mul(Exp.LN2_HI));
        r = r.sub(kf.mul(Exp.LN2_LO));
        FloatVector p = r.mul(Exp.C7).add(Exp.C6);
        p = p.mul(r).add(Exp.C5);
        p = p.mul(r).add(Exp.C4);
        p = p.mul(r).add(Exp.C3);
        p = p.mul(r).add(Exp.C2);
        p = p.mul(r).add(Exp.C1);
        p = p.mul(r).add(Exp.C0);
        FloatVector scale = k.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(scale);
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

    static void block4(int r0, int n, int k0, int k1, float[] a, int aOff, int aRow, int aK,
                               float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        int a0 = aOff + r0 * aRow, a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow;
        int c0 = cOff + r0 * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        int j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            FloatVector s00 = FloatVector.fromArray(F, c, c0 + j), s01 = FloatVector.fromArray(F, c, c0 + j + L);
            FloatVector s10 = FloatVector.fromArray(F, c, c1 + j), s11 = FloatVector.fromArray(F, c, c1 + j + L);
            FloatVector s20 = FloatVector.fromArray(F, c, c2 + j), s21 = FloatVector.fromArray(F, c, c2 + j + L);
            FloatVector s30 = FloatVector.fromArray(F, c, c3 + j), s31 = FloatVector.fromArray(F, c, c3 + j + L);
            for (int kk = k0; kk < k1; kk++) {
                int bo = bOff + kk * ldb + j, ak = kk * aK;
                FloatVector b0 = FloatVector.fromArray(F, b, bo), b1 = FloatVector.fromArray(F, b, bo + L);
                FloatVector x0 = FloatVector.broadcast(F, a[a0 + ak]);
                s00 = b0.fma(x0, s00);
                s01 = b1.fma(x0, s01);
                FloatVector x1 = FloatVector.broadcast(F, a[a1 + ak]);
                s10 = b0.fma(x1, s10);
                s11 = b1.fma(x1, s11);
                FloatVector x2 = FloatVector.broadcast(F, a[a2 + ak]);
                s20 = b0.fma(x2, s20);
                s21 = b1.fma(x2, s21);
                FloatVector x3 = FloatVector.broadcast(F, a[a3 + ak]);
                s30 = b0.fma(x3, s30);
                s31 = b1.fma(x3, s31);
            }
            s00.intoArray(c, c0 + j);
            s01.intoArray(c, c0 + j + L);
            s10.intoArray(c, c1 + j);
            s11.intoArray(c, c1 + j + L);
            s20.intoArray(c, c2 + j);
            s21.intoArray(c, c2 + j + L);
            s30.intoArray(c, c3 + j);
            s31.intoArray(c, c3 + j + L);
        }
        for (; j + L <= n; j += L) {
            FloatVector s0 = FloatVector.fromArray(F, c, c0 + j), s1 = FloatVector.fromArray(F, c, c1 + j);
            FloatVector s2 = FloatVector.fromArray(F, c, c2 + j), s3 = FloatVector.fromArray(F, c, c3 + j);
            for (int kk = k0; kk < k1; kk++) {
                FloatVector bv = FloatVector.fromArray(F, b, bOff + kk * ldb + j);
                int ak = kk * aK;
                s0 = bv.fma(FloatVector.broadcast(F, a[a0 + ak]), s0);
                s1 = bv.fma(FloatVector.broadcast(F, a[a1 + ak]), s1);
                s2 = bv.fma(FloatVector.broadcast(F, a[a2 + ak]), s2);
                s3 = bv.fma(FloatVector.broadcast(F, a[a3 + ak]), s3);
            }
            s0.intoArray(c, c0 + j);
            s1.intoArray(c, c1 + j);
            s2.intoArray(c, c2 + j);
            s3.intoArray(c, c3 + j);
        }
        for (; j < n; j++) {
            float s0 = c[c0 + j], s1 = c[c1 + j], s2 = c[c2 + j], s3 = c[c3 + j];
            for (int kk = k0; kk < k1; kk++) {
                float bv = b[bOff + kk * ldb + j];
                int ak = kk * aK;
                s0 = Math.fma(a[a0 + ak], bv, s0);
                s1 = Math.fma(a[a1 + ak], bv, s1);
                s2 = Math.fma(a[a2 + ak], bv, s2);
                s3 = Math.fma(a[a3 + ak], bv, s3);
            }
            c[c0 + j] = s0;
            c[c1 + j] = s1;
            c[c2 + j] = s2;
            c[c3 + j] = s3;
        }
    }

    /** SwiGLU forward over [i0, i1): a = silu(g)·u, {@link Silu} lane-wise; returns where the scalar tail starts. */
    static int swiGluForward(float[] g, float[] u, float[] a, int i0, int i1) {
        int i = i0;
        for (int bound = i0 + F.loopBound(i1 - i0); i < bound; i += L) {
            FloatVector x = FloatVector.fromArray(F, g, i);
            x.mul(sigmoid(x)).mul(FloatVector.fromArray(F, u, i)).intoArray(a, i);
        }
        return i;
    }

    /**
     * SwiGLU backward over [i0, i1): dg = {@link Silu#backward}(da·u, g), du = da·{@link Silu#silu}(g), lane-wise;
     * returns where the scalar tail starts.
     */
    static int swiGluBackward(float[] da, float[] g, float[] u, float[] dg, float[] du, int i0, int i1) {
        int i = i0;
        FloatVector one = FloatVector.broadcast(F, 1f);
        for (int bound = i0 + F.loopBound(i1 - i0); i < bound; i += L) {
            FloatVector x = FloatVector.fromArray(F, g, i), s = sigmoid(x), d = FloatVector.fromArray(F, da, i);
            d.mul(FloatVector.fromArray(F, u, i)).mul(s).mul(one.add(x.mul(one.sub(s)))).intoArray(dg, i);
            d.mul(x.mul(s)).intoArray(du, i);
        }
        return i;
    }

    /** {@link Silu#sigmoid} lane-wise: 1 / (exp(−x) + 1). */
    private static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(F, 1f).div(exp(x.neg()).add(1f));
    }
}
