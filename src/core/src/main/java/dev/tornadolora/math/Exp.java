package dev.tornadolora.math;

/**
 * exp in fp32, the one source behind softmax, log-sum-exp, cross-entropy and SiLU: built from + and × (each
 * rounded once, as Java specifies them) and int operations only, so that it gives one result whether interpreted,
 * C1 or C2 compiled, in a Vector API lane ({@code llama.ops.VecSimd.exp}, the same operations lane-wise) or in a
 * TornadoVM kernel (a static method of plain float/int arithmetic that TornadoVM inlines; no {@code Math.fma},
 * which TornadoVM's OpenCL backend cannot compile). The JDK's own exp would not do: its vector form is an SVML
 * intrinsic under C2 and {@code Math.exp} per lane before, and the two round differently.
 *
 * <pre>
 *   x clamped to [−87.3, 88.3];  x = k·ln2 + r  (Cody–Waite, ln2 = LN2_HI + LN2_LO, |r| ≤ ln2/2)
 *   e^r by its Taylor polynomial to r⁷ (Horner; error below 1e-8 relative);  × 2^k ({@link #pow2}, exact)
 * </pre>
 * Within 2 ulp of the correctly rounded exp on the clamped range (ExpTest). A NaN argument gives an unspecified
 * finite value (the clamp's {@code Math.max}/{@code fmax} differ on NaN); callers never pass one.
 */
public final class Exp {
    /** log2(e). */
    public static final float LOG2E = 1.44269504f;
    /** ln 2's leading 9 bits: k·LN2_HI is exact for every k of the clamped range. */
    public static final float LN2_HI = 0.693359375f;
    /** ln 2 − LN2_HI. */
    public static final float LN2_LO = -2.12194440e-4f;
    /** The clamp's lower end: e^MIN_X is still a normal float, so no device flushes it to zero. */
    public static final float MIN_X = -87.3f;
    /** The clamp's upper end: e^MAX_X is still finite. */
    public static final float MAX_X = 88.3f;
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
        int k = (int) (x * LOG2E + 126.5f) - 126;
        float kf = k;
        float r = x - kf * LN2_HI;  // kf·LN2_HI is exact (8 + 9 significant bits)
        r = r - kf * LN2_LO;
        float p = C7 * r + C6;
        p = p * r + C5;
        p = p * r + C4;
        p = p * r + C3;
        p = p * r + C2;
        p = p * r + C1;
        p = p * r + C0;
        return p * pow2(k);
    }

    /**
     * {@return 2^k, exactly, for −126 ≤ k ≤ 127}, by multiplying powers of two (every product is exact), not by
     * writing the exponent bits: TornadoVM's OpenCL backend cannot compile {@code Float.intBitsToFloat}. Any exact
     * construction gives the same float, so the Vector API twin may write the bits.
     *
     * @param k the exponent
     */
    public static float pow2(int k) {
        int n = k < 0 ? -k : k;  // not Math.abs(int): TornadoVM 5.2's plugin for it breaks the build of the graph
        float b0 = k < 0 ? 0.5f : 2f, b1 = b0 * b0, b2 = b1 * b1, b3 = b2 * b2, b4 = b3 * b3, b5 = b4 * b4,
                b6 = b5 * b5;
        float p = (n & 1) != 0 ? b0 : 1f;
        p = (n & 2) != 0 ? p * b1 : p;
        p = (n & 4) != 0 ? p * b2 : p;
        p = (n & 8) != 0 ? p * b3 : p;
        p = (n & 16) != 0 ? p * b4 : p;
        p = (n & 32) != 0 ? p * b5 : p;
        return (n & 64) != 0 ? p * b6 : p;
    }
}
