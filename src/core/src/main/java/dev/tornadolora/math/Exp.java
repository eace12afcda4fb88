package dev.tornadolora.math;

/**
 * exp in fp32, the one source behind softmax, log-sum-exp, cross-entropy and SiLU: built from +, ×, fma and bit
 * operations only, so that it gives one result whether interpreted, C1 or C2 compiled, in a Vector API lane
 * ({@code llama.ops.VecSimd.exp}, the same operations lane-wise) or in a TornadoVM kernel (a static method of
 * plain float/int arithmetic that TornadoVM inlines). The JDK's own exp would not do: its vector form is an SVML
 * intrinsic under C2 and {@code Math.exp} per lane before, and the two round differently.
 *
 * <pre>
 *   x clamped to [−87.3, 88.3];  x = k·ln2 + r  (Cody–Waite, ln2 = LN2_HI + LN2_LO, |r| ≤ ln2/2)
 *   e^r by its Taylor polynomial to r⁷ (Horner with fma; error below 1e-8 relative);  × 2^k built in the exponent bits
 * </pre>
 * Within 2 ulp of the correctly rounded exp on the clamped range (ExpTest). A NaN argument gives an unspecified
 * finite value (the clamp's {@code Math.max}/{@code fmax} differ on NaN); callers never pass one.
 */
public final class Exp {
    public static final float LOG2E = 1.44269504f;
    public static final float LN2_HI = 0.693359375f;
    public static final float LN2_LO = -2.12194440e-4f;
    public static final float MIN_X = -87.3f, MAX_X = 88.3f;
    /** Taylor coefficients of e^r, highest power first: 1/7!, 1/6!, .., 1/1!, 1/0!. */
    public static final float C7 = 1f / 5040, C6 = 1f / 720, C5 = 1f / 120, C4 = 1f / 24, C3 = 1f / 6, C2 = 0.5f,
            C1 = 1f, C0 = 1f;

    private Exp() {}

    /**
     * {@return e^x in fp32, within 2 ulp}
     *
     * @param x the argument
     */
    public static float exp(float x) {
        x = Math.min(Math.max(x, MIN_X), MAX_X);
        // floor(x·log2e + 0.5) by truncating a positive number (x·log2e + 0.5 + 126 > 0 in the clamped range)
        int k = (int) Math.fma(x, LOG2E, 126.5f) - 126;
        float kf = k;
        float r = Math.fma(kf, -LN2_HI, x);
        r = Math.fma(kf, -LN2_LO, r);
        float p = Math.fma(C7, r, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, C1);
        p = Math.fma(p, r, C0);
        return p * Float.intBitsToFloat((k + 127) << 23);
    }
}
