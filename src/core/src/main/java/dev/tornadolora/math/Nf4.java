package dev.tornadolora.math;

/**
 * NF4 decoding, the one source: element e of a flattened weight is
 * <pre>
 *   NF4[code(e)] · scale[e / blockSize]        code(e) = the high nibble of byte e/2 for even e, the low one for odd e
 *   scale_b = q_b / qf_j + μ                   (the double-quantized block scale, j = b / scalerBlockSize)
 * </pre>
 * one fp32 multiply per element, so every way of decoding gives these bits: {@code Nf4Tensor.decode} is
 * {@link #decode}; the Vector API decoder ({@code kernels.jvm.Nf4Decoder}) and the TornadoVM kernels
 * ({@code tornado.kernels.Nf4Decode}, which calls {@link #code(int, int)}) only change the schedule and are
 * tested against {@link #element} bit for bit.
 *
 * <p>{@link #code(int, int)} and {@link #highNibbleShift} use int arithmetic only (no arrays, no branches), so
 * a TornadoVM kernel can call them and has them inlined; {@code packedByte} may be sign-extended.
 */
public final class Nf4 {
    /** The NF4 code book (bitsandbytes' / torchao's table), index 0..15. */
    private static final float[] CODEBOOK = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };
    /** Codes in the book. */
    public static final int CODES = 16;
    /** The code of 0.0. */
    public static final int ZERO_CODE = 7;

    private Nf4() {}

    /**
     * {@return NF4[code], in [-1, 1]}
     *
     * @param code 0..15
     */
    public static float codebook(int code) {
        return CODEBOOK[code];
    }

    /** {@return a copy of the code book, for a device buffer or a lookup table} */
    public static float[] codebook() {
        return CODEBOOK.clone();
    }

    /**
     * {@return 4 for an even element (high nibble), 0 for an odd one}
     *
     * @param e an element of the flattened weight
     */
    public static int highNibbleShift(int e) {
        return ((e & 1) ^ 1) << 2;
    }

    /**
     * {@return the code of element e, 0..15}
     *
     * @param packedByte byte e/2 of the packed codes (sign-extended or not)
     * @param e          the element
     */
    public static int code(int packedByte, int e) {
        return (packedByte >> highNibbleShift(e)) & 0xF;
    }

    /**
     * {@return the decoded block scale q_b / qf_j + μ}
     *
     * @param quantizedScaler q_b, the int8 scaler of block b
     * @param factor          qf_j, the quantization factor of its scaler block
     * @param mean            μ, the mean of the block scales
     */
    public static float blockScale(byte quantizedScaler, float factor, float mean) {
        return quantizedScaler / factor + mean;
    }

    /**
     * {@return element e decoded, NF4[code(e)] · scale[e / blockSize]}
     *
     * @param packed      the packed codes, two a byte
     * @param blockScales the decoded block scales
     * @param blockSize   elements per block
     * @param e           the element
     */
    public static float element(byte[] packed, float[] blockScales, int blockSize, int e) {
        return CODEBOOK[code(packed[e >> 1], e)] * blockScales[e / blockSize];
    }

    /**
     * Elements {@code [e0, e0 + count)} decoded into {@code dst[off ..]}: {@link #element} for each, a byte read
     * once for its two elements of the same block. Block sizes need not be even: a byte may hold the last code
     * of one block and the first of the next.
     *
     * @param packed      the packed codes
     * @param blockScales the decoded block scales
     * @param blockSize   elements per block
     * @param e0          the first element
     * @param count       how many
     * @param dst         receives them
     * @param off         where in {@code dst} they start
     */
    public static void decode(byte[] packed, float[] blockScales, int blockSize, int e0, int count, float[] dst,
                              int off) {
        int e = e0, end = e0 + count;
        while (e < end) {
            int blockEnd = Math.min(end, (e / blockSize + 1) * blockSize);
            float scale = blockScales[e / blockSize];
            if ((e & 1) != 0) {
                dst[off++] = CODEBOOK[code(packed[e >> 1], e)] * scale;
                e++;
            }
            for (; e + 1 < blockEnd; e += 2) {
                int b = packed[e >> 1];
                dst[off++] = CODEBOOK[code(b, e)] * scale;
                dst[off++] = CODEBOOK[code(b, e + 1)] * scale;
            }
            if (e < blockEnd) {
                dst[off++] = CODEBOOK[code(packed[e >> 1], e)] * scale;
                e++;
            }
        }
    }
}
