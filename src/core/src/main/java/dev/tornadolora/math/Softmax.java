package dev.tornadolora.math;

import java.util.function.IntToDoubleFunction;

/**
 * Softmax and log-sum-exp over a row in fp32, the one source for attention (forward and backward) and the
 * cross-entropies ({@link CrossEntropy}). A row is taken apart into two primitives, {@link Rows#max} and
 * {@link Rows#expInPlace}, and put together here:
 * <pre>
 *   m   = scale · max_i x_i                       (scale &gt; 0)
 *   e_i = exp(x_i·scale − m),   sum = Σ e_i        {@link Exp#exp}
 *   lse = m + log(sum)                             in double (StrictMath.log); attention keeps it as fp32
 *   p_i = e_i · (1 / sum)
 * </pre>
 * {@link #SCALAR} is the definition: a left-to-right sum. A fast path ({@code llama.ops.Vec}: the Vector API
 * when it is readable) implements {@link Rows} with the same max and every e_i bit for bit, but sums the e_i in
 * vector lanes, i.e. in another order: its sum (and so p and lse) then differs from the scalar one by at most
 * 2(n − 1)·2⁻²⁴·sum (the bound of any order of summing n positive fp32 terms, twice), which SharedMathTest
 * checks. A TornadoVM kernel calls {@link Exp#exp} per element and sums in its own (work-group) order, with the
 * same bound.
 */
public final class Softmax {
    /** The two loops a row is made of. */
    public interface Rows {
        /**
         * {@return max x[xo + i] for i &lt; n (n ≥ 1)}
         *
         * @param n  the row's length
         * @param x  the row's array
         * @param xo where the row starts
         */
        float max(int n, float[] x, int xo);

        /**
         * x[xo + i] = exp(x[xo + i]·mul − sub) for i &lt; n, each by {@link Exp#exp}; returns their sum.
         *
         * @param n   the row's length
         * @param x   the row's array, overwritten
         * @param xo  where the row starts
         * @param mul the factor of each element
         * @param sub subtracted after it
         * @return Σ of the new elements
         */
        float expInPlace(int n, float[] x, int xo, float mul, float sub);
    }

    /** The definition: scalar loops, summed left to right. */
    public static final Rows SCALAR = new Rows() {
        @Override
        public float max(int n, float[] x, int xo) {
            float m = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) m = Math.max(m, x[xo + i]);
            return m;
        }

        @Override
        public float expInPlace(int n, float[] x, int xo, float mul, float sub) {
            float s = 0f;
            for (int i = 0; i < n; i++) {
                x[xo + i] = term(x[xo + i], mul, sub);
                s += x[xo + i];
            }
            return s;
        }

        @Override
        public String toString() {
            return "scalar";
        }
    };

    private Softmax() {}

    /**
     * {@return exp(x·mul − sub), one element of a row: e^(scale·x − m) with mul = scale, sub = m}; plain float
     * arithmetic, so a TornadoVM kernel calls it as it is
     *
     * @param x   the element
     * @param mul its factor
     * @param sub subtracted after it
     */
    public static float term(float x, float mul, float sub) {
        return Exp.exp(x * mul - sub);
    }

    /**
     * The row x[xo .. xo + n) replaced by softmax(scale · x); returns its log-sum-exp, log Σ_i e^(scale·x_i).
     *
     * @param rows  the loops to use
     * @param n     the row's length (≥ 1)
     * @param x     the row's array, overwritten by the probabilities
     * @param xo    where the row starts
     * @param scale the factor of the logits (&gt; 0)
     * @return the row's log-sum-exp, rounded to fp32
     */
    public static float softmaxInPlace(Rows rows, int n, float[] x, int xo, float scale) {
        float m = rows.max(n, x, xo) * scale;
        float sum = rows.expInPlace(n, x, xo, scale, m);
        float invSum = 1f / sum;
        for (int i = 0; i < n; i++) x[xo + i] *= invSum;
        return (float) logSumExp(m, sum);
    }

    /**
     * The probabilities recomputed from a log-sum-exp that {@link #softmaxInPlace} returned:
     * x_i ← exp(x_i·scale − lse) (the backward of attention, which keeps lse instead of P).
     *
     * @param rows  the loops to use
     * @param n     the row's length
     * @param x     the row's logits, overwritten by the probabilities
     * @param xo    where the row starts
     * @param scale the factor of the logits
     * @param lse   the row's log-sum-exp
     */
    public static void probabilitiesInPlace(Rows rows, int n, float[] x, int xo, float scale, float lse) {
        rows.expInPlace(n, x, xo, scale, lse);
    }

    /**
     * {@return m + log(sum) in double: the log-sum-exp of a row whose shifted exponentials sum to sum}
     *
     * @param m   the shift (the row's scaled max)
     * @param sum Σ exp(x_i − m)
     */
    public static double logSumExp(float m, float sum) {
        return m + StrictMath.log(sum);
    }

    /**
     * {@return log Σ_i e^(x_i) for i &lt; n in double (max, then Σ exp(x_i − max)): the statement the fp32 paths
     * are checked against, and what evaluation in double uses}
     *
     * @param n how many (≥ 1)
     * @param x x_i by i, e.g. {@code i -> row[off + i]}
     */
    public static double logSumExp(int n, IntToDoubleFunction x) {
        double m = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = 0; i < n; i++) m = Math.max(m, x.applyAsDouble(i));
        for (int i = 0; i < n; i++) sum += Math.exp(x.applyAsDouble(i) - m);
        return m + Math.log(sum);
    }
}
