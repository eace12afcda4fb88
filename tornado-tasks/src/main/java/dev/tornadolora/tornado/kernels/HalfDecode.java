package dev.tornadolora.tornado.kernels;

import dev.tornadolora.tensor.HalfWeight;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * BF16 and F16 weights decoded to fp32 on the device, exactly, giving the JVM's bits ({@link HalfWeight#decode}:
 * {@code Float.intBitsToFloat(bits << 16)} and {@code Float.float16ToFloat}; HalfDecodeTest checks every one of the
 * 65 536 patterns of both formats). TornadoVM's OpenCL backend cannot reinterpret an int as a float inside
 * arithmetic ({@code Float.intBitsToFloat} fails as "unimplemented" unless stored at once; {@code
 * Float.float16ToFloat} compiles silently into an int-to-float conversion), so the value is built by arithmetic, as
 * NF4 reads its code book: with m the mantissa bits (7 for BF16, 10 for F16) and e the exponent field,
 * <pre>
 *   value = ((e == 0 ? 0 : 2^m) + mantissa) · powers[sign, e]       powers[sign, e] = ±2^(max(e, 1) − bias − m)
 * </pre>
 * (bias 127 or 15). The integer is below 2^(m+1) and the factor a power of two, so the product is exact,
 * subnormals and signed zeros included; an infinity stays infinite and a NaN decodes as an infinity (a non-finite
 * weight gives a non-finite loss either way). {@code powers} is a device buffer of {@link #powers} (512 or 64
 * floats); the format is the kernels' compile-time constant {@code mantissaBits}.
 */
public final class HalfDecode {
    private HalfDecode() {}

    /** {@return the mantissa bits of a format: the kernels' format argument} */
    public static int mantissaBits(HalfWeight.Format format) {
        return format == HalfWeight.Format.BF16 ? 7 : 10;
    }

    /** {@return the signed powers of two indexed by a value's sign and exponent bits (its top 16 − m bits)} */
    public static float[] powers(HalfWeight.Format format) {
        int m = mantissaBits(format);
        int exponentBits = 15 - m, bias = (1 << (exponentBits - 1)) - 1, maxExponent = (1 << exponentBits) - 1;
        float[] out = new float[1 << (exponentBits + 1)];
        for (int i = 0; i < out.length; i++) {
            int e = i & maxExponent;
            float p = e == maxExponent ? Float.POSITIVE_INFINITY : Math.scalb(1f, Math.max(e, 1) - bias - m);
            out[i] = (i >> exponentBits) == 1 ? -p : p;
        }
        return out;
    }

    /** Element e of the flattened weight, decoded (the 16 bits widened to int before any mask, as NF4's byte). */
    public static float element(ShortArray bits, FloatArray powers, int e, int mantissaBits) {
        int b = bits.get(e);
        int exponentBits = 15 - mantissaBits;
        int exponent = (b >> mantissaBits) & ((1 << exponentBits) - 1);
        int significand = (Math.min(exponent, 1) << mantissaBits) + (b & ((1 << mantissaBits) - 1));
        return significand * powers.get((b >> mantissaBits) & ((2 << exponentBits) - 1));
    }

    /** out[i] = weight[i] for i &lt; n (the decode's test). */
    public static void decode(ShortArray bits, FloatArray powers, FloatArray out, int n, int mantissaBits) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, element(bits, powers, i, mantissaBits));
        }
    }

    /**
     * x[t, i] = table[ids[t], i], a 16-bit embedding table's rows decoded: {@code EmbeddingKernels.gather}'s
     * schedule (dimension 0 along the row).
     */
    public static void gather(IntArray ids, ShortArray table, FloatArray powers, FloatArray x, int tokens, int hidden,
                              int mantissaBits) {
        for (@Parallel int i = 0; i < hidden; i++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                x.set(t * hidden + i, element(table, powers, ids.get(t) * hidden + i, mantissaBits));
            }
        }
    }
}
