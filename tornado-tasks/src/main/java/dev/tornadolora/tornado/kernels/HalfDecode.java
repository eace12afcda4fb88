package dev.tornadolora.tornado.kernels;

import dev.tornadolora.tensor.HalfWeight;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

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

    /**
     * The weight decoded straight into the panels that {@link Matmul#panels} reads, for c = a · B with B(k, n) =
     * W[n, k] ({@code bTransposed = 1}, forward) or W[k, n] (backward); lanes past N are 0. The schedule of
     * {@link Nf4Decode#dequantizePanels}.
     */
    public static void decodePanels(ShortArray bits, FloatArray powers, VectorFloat16 panels, int k, int nPanels,
                                    int n, int bTransposed, int mantissaBits) {
        for (@Parallel int kk = 0; kk < k; kk++) {
            for (@Parallel int p = 0; p < nPanels; p++) {
                int col = p * Matmul.PANEL;
                float v0 = panelElement(bits, powers, kk, col, n, k, bTransposed, mantissaBits, 0);
                float v1 = panelElement(bits, powers, kk, col + 1, n, k, bTransposed, mantissaBits, 0);
                float v2 = panelElement(bits, powers, kk, col + 2, n, k, bTransposed, mantissaBits, 0);
                float v3 = panelElement(bits, powers, kk, col + 3, n, k, bTransposed, mantissaBits, 0);
                float v4 = panelElement(bits, powers, kk, col + 4, n, k, bTransposed, mantissaBits, 0);
                float v5 = panelElement(bits, powers, kk, col + 5, n, k, bTransposed, mantissaBits, 0);
                float v6 = panelElement(bits, powers, kk, col + 6, n, k, bTransposed, mantissaBits, 0);
                float v7 = panelElement(bits, powers, kk, col + 7, n, k, bTransposed, mantissaBits, 0);
                float v8 = panelElement(bits, powers, kk, col + 8, n, k, bTransposed, mantissaBits, 0);
                float v9 = panelElement(bits, powers, kk, col + 9, n, k, bTransposed, mantissaBits, 0);
                float v10 = panelElement(bits, powers, kk, col + 10, n, k, bTransposed, mantissaBits, 0);
                float v11 = panelElement(bits, powers, kk, col + 11, n, k, bTransposed, mantissaBits, 0);
                float v12 = panelElement(bits, powers, kk, col + 12, n, k, bTransposed, mantissaBits, 0);
                float v13 = panelElement(bits, powers, kk, col + 13, n, k, bTransposed, mantissaBits, 0);
                float v14 = panelElement(bits, powers, kk, col + 14, n, k, bTransposed, mantissaBits, 0);
                float v15 = panelElement(bits, powers, kk, col + 15, n, k, bTransposed, mantissaBits, 0);
                panels.set(p * k + kk, new Float16(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14,
                        v15));
            }
        }
    }

    /**
     * {@link #decodePanels} for several weights in one launch: their 16-bit values end to end, their panels end to
     * end in {@code panels} as {@code segments} ({@link PanelSegments}, {@code count} of them, {@code slots}
     * Float16s in all) lays out; the schedule of {@link Nf4Decode#dequantizeSegments}.
     */
    public static void decodeSegments(ShortArray bits, FloatArray powers, IntArray segments, VectorFloat16 panels,
                                      int slots, int count, int bTransposed, int mantissaBits) {
        for (@Parallel int i = 0; i < slots; i++) {
            int slot = segments.get(PanelSegments.START) + i;
            int s = PanelSegments.segment(segments, slot, count) * PanelSegments.FIELDS;
            int k = segments.get(s + PanelSegments.K);
            int local = slot - segments.get(s + PanelSegments.START);
            int p = local / k;
            int n = segments.get(s + PanelSegments.N);
            int first = segments.get(s + PanelSegments.ELEMENT);
            int kk = local - p * k;
            int col = p * Matmul.PANEL;
            float v0 = panelElement(bits, powers, kk, col, n, k, bTransposed, mantissaBits, first);
            float v1 = panelElement(bits, powers, kk, col + 1, n, k, bTransposed, mantissaBits, first);
            float v2 = panelElement(bits, powers, kk, col + 2, n, k, bTransposed, mantissaBits, first);
            float v3 = panelElement(bits, powers, kk, col + 3, n, k, bTransposed, mantissaBits, first);
            float v4 = panelElement(bits, powers, kk, col + 4, n, k, bTransposed, mantissaBits, first);
            float v5 = panelElement(bits, powers, kk, col + 5, n, k, bTransposed, mantissaBits, first);
            float v6 = panelElement(bits, powers, kk, col + 6, n, k, bTransposed, mantissaBits, first);
            float v7 = panelElement(bits, powers, kk, col + 7, n, k, bTransposed, mantissaBits, first);
            float v8 = panelElement(bits, powers, kk, col + 8, n, k, bTransposed, mantissaBits, first);
            float v9 = panelElement(bits, powers, kk, col + 9, n, k, bTransposed, mantissaBits, first);
            float v10 = panelElement(bits, powers, kk, col + 10, n, k, bTransposed, mantissaBits, first);
            float v11 = panelElement(bits, powers, kk, col + 11, n, k, bTransposed, mantissaBits, first);
            float v12 = panelElement(bits, powers, kk, col + 12, n, k, bTransposed, mantissaBits, first);
            float v13 = panelElement(bits, powers, kk, col + 13, n, k, bTransposed, mantissaBits, first);
            float v14 = panelElement(bits, powers, kk, col + 14, n, k, bTransposed, mantissaBits, first);
            float v15 = panelElement(bits, powers, kk, col + 15, n, k, bTransposed, mantissaBits, first);
            panels.set(slot, new Float16(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15));
        }
    }

    /** B(kk, col) decoded, or 0 past the last column (branch-free, as {@link Nf4Decode}'s). */
    private static float panelElement(ShortArray bits, FloatArray powers, int kk, int col, int n, int k,
                                      int bTransposed, int mantissaBits, int first) {
        int c = Math.min(col, n - 1);
        int inside = Math.max(0, Math.min(1, n - col));
        int e = first + bTransposed * (c * k + kk) + (1 - bTransposed) * (kk * n + c);
        return element(bits, powers, e, mantissaBits) * inside;
    }
}
