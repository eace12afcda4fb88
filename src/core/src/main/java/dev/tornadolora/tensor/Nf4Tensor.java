package dev.tornadolora.tensor;

import dev.tornadolora.math.Nf4;

/**
 * A weight [rows, cols] in the NF4 format of torchao's {@code to_nf4(weight, block_size, scaler_block_size)},
 * byte for byte, so that the same fp32 weight gives the same record in Java as in PyTorch (up to the last bit of
 * μ, see {@link #mean}).
 *
 * <pre>
 *   flatten row-major; per block b of blockSize elements   s_b = max |w|
 *   double quantization of the scalers:                    μ = mean(s),  s'_b = s_b − μ
 *     per scaler block j of scalerBlockSize scalers         A_j = max |s'|,  qf_j = 256 / (2·A_j)
 *                                                           q_b = clamp(round_half_even(s'_b · qf_j), −128, 127)
 *   code of element e (in block b)                          argmin_c |w_e / s_b − NF4[c]|  (first on ties)
 *   two codes per byte, the even element in the high nibble
 *   dequantized element                                     NF4[code] · (q_b / qf_j + μ)   (decoding: {@link Nf4})
 * </pre>
 * All arithmetic is fp32 as in torch, except the sum behind μ (see {@link #mean}). Block sizes need not be even:
 * a byte may hold the last code of one block and the first of the next.
 *
 * <p>Storage: numel/2 bytes of codes, numel/block_size int8 scalers, 4 bytes per scaler block and 4 for μ, that
 * is 4 + 8/64 + 32/(64·256) ≈ 4.127 bits per parameter with the defaults (plus 32/numel for μ). In memory the
 * decoded block scales q_b/qf_j + μ are kept as well, 32/block_size bits per parameter more, so that decoding
 * a block costs no division.
 *
 * <p>One deviation from torchao, on purpose: a block whose elements are all zero has s_b = 0, where torchao
 * divides 0/0 and stores NaN-driven codes (index 0, i.e. −1.0 × a non-zero scaler). Here such a block gets code 7
 * (the 0.0 entry) everywhere, so it decodes to exact zeros.
 */
public final class Nf4Tensor implements BaseWeight {

    /** torchao's default block size: elements per absmax scale. */
    public static final int DEFAULT_BLOCK_SIZE = 64;
    /** torchao's default scaler block size: block scales per quantization factor. */
    public static final int DEFAULT_SCALER_BLOCK_SIZE = 256;

    private final int rows;
    private final int cols;
    private final int blockSize;
    private final int scalerBlockSize;
    private final byte[] packedCodes;          // [numel / 2]
    private final byte[] quantizedScalers;     // [numel / blockSize]
    private final float[] quantizationFactor;  // [nBlocks / scalerBlockSize]
    private final float scalerMean;
    private final float[] blockScales;         // q_b / qf_j + μ, derived once: 1/blockSize of the weight

    /**
     * Wraps a stored record (the arrays, not copies), checking every length against the shape and block sizes,
     * and that the factors are positive (+∞ is what a scaler block of equal scalers gets) and μ finite.
     *
     * @param rows               the weight's rows
     * @param cols               the weight's columns
     * @param blockSize          elements per absmax block
     * @param scalerBlockSize    block scales per quantization factor
     * @param packedCodes        the 4-bit codes, two a byte (even element in the high nibble) [numel/2]
     * @param quantizedScalers   the int8 block scales [numel/blockSize]
     * @param quantizationFactor the factors of the scales [numel/blockSize/scalerBlockSize]
     * @param scalerMean         μ, the mean of the block scales
     */
    public Nf4Tensor(int rows, int cols, int blockSize, int scalerBlockSize, byte[] packedCodes,
                     byte[] quantizedScalers, float[] quantizationFactor, float scalerMean) {
        long numel = checkSizes(rows, cols, blockSize, scalerBlockSize);
        long nBlocks = numel / blockSize;
        String shape = Shapes.format(rows, cols);
        requireLength("quantized_data", packedCodes.length, numel / 2, "numel " + numel + " of " + shape + " / 2");
        requireLength("quantized_scalers", quantizedScalers.length, nBlocks,
                "numel " + numel + " of " + shape + " / block_size " + blockSize);
        requireLength("quantization_factor", quantizationFactor.length, nBlocks / scalerBlockSize,
                nBlocks + " blocks / scaler_block_size " + scalerBlockSize);
        for (int j = 0; j < quantizationFactor.length; j++) {
            if (!(quantizationFactor[j] > 0f)) {
                throw new IllegalArgumentException("quantization_factor[" + j + "]: expected a positive value but got "
                        + quantizationFactor[j]);
            }
        }
        if (!Float.isFinite(scalerMean)) {
            throw new IllegalArgumentException("scaler_mean: expected a finite value but got " + scalerMean);
        }
        this.rows = rows;
        this.cols = cols;
        this.blockSize = blockSize;
        this.scalerBlockSize = scalerBlockSize;
        this.packedCodes = packedCodes;
        this.quantizedScalers = quantizedScalers;
        this.quantizationFactor = quantizationFactor;
        this.scalerMean = scalerMean;
        this.blockScales = new float[(int) nBlocks];
        for (int b = 0; b < nBlocks; b++) {
            float scale = Nf4.blockScale(quantizedScalers[b], quantizationFactor[b / scalerBlockSize], scalerMean);
            // A record quantized from finite values always gives finite scales; a tiny factor in a forged one
            // would decode to ±Inf and NaN instead.
            if (!Float.isFinite(scale)) {
                throw new IllegalArgumentException("quantized_scalers[" + b + "] / quantization_factor["
                        + b / scalerBlockSize + "] + scaler_mean = " + quantizedScalers[b] + " / "
                        + quantizationFactor[b / scalerBlockSize] + " + " + scalerMean + " is not finite");
            }
            blockScales[b] = scale;
        }
    }

    /**
     * torchao's {@code to_nf4(w, 64, 256)}.
     *
     * @param w    the weight, row-major, finite
     * @param rows its rows
     * @param cols its columns
     * @return the NF4 weight
     */
    public static Nf4Tensor quantize(float[] w, int rows, int cols) {
        return quantize(w, rows, cols, DEFAULT_BLOCK_SIZE, DEFAULT_SCALER_BLOCK_SIZE);
    }

    /**
     * torchao's {@code to_nf4(w, blockSize, scalerBlockSize)} of a row-major [rows, cols] weight. Every element
     * must be finite: a NaN or infinity would poison its block's scaler and the mean of all scalers.
     *
     * @param w               the weight, row-major
     * @param rows            its rows
     * @param cols            its columns
     * @param blockSize       elements per absmax block
     * @param scalerBlockSize block scales per quantization factor
     * @return the NF4 weight
     */
    public static Nf4Tensor quantize(float[] w, int rows, int cols, int blockSize, int scalerBlockSize) {
        long numel = checkSizes(rows, cols, blockSize, scalerBlockSize);
        requireLength("weight", w.length, numel, "numel of " + Shapes.format(rows, cols));
        int nBlocks = (int) (numel / blockSize);
        float[] absmax = new float[nBlocks];
        for (int b = 0; b < nBlocks; b++) {
            float m = 0f;
            for (int e = b * blockSize, end = e + blockSize; e < end; e++) {
                if (!Float.isFinite(w[e])) {
                    throw new IllegalArgumentException("weight: element " + e + " (row " + e / cols + ", column "
                            + e % cols + ") is " + w[e] + "; NF4 quantization needs finite values");
                }
                m = Math.max(m, Math.abs(w[e]));
            }
            absmax[b] = m;
        }
        float mean = mean(absmax);

        int nScalerBlocks = nBlocks / scalerBlockSize;
        byte[] q = new byte[nBlocks];
        float[] qf = new float[nScalerBlocks];
        for (int j = 0; j < nScalerBlocks; j++) {
            int b0 = j * scalerBlockSize, b1 = b0 + scalerBlockSize;
            float a = 0f;
            for (int b = b0; b < b1; b++) {
                a = Math.max(a, Math.abs(absmax[b] - mean));
            }
            qf[j] = 256f / (2f * a);
            for (int b = b0; b < b1; b++) {
                float scaled = (absmax[b] - mean) * qf[j];
                // a == 0 (all scalers of the block equal μ): torch computes 0·inf = NaN and casts it to int8 in an
                // unspecified way; 0 is the value that decodes to μ, the exact scaler.
                q[b] = Float.isNaN(scaled) ? 0 : (byte) Math.max(-128, Math.min(127, Math.rint(scaled)));
            }
        }

        byte[] packed = new byte[(int) (numel / 2)];
        for (int b = 0; b < nBlocks; b++) {
            float s = absmax[b];
            for (int e = b * blockSize, end = e + blockSize; e < end; e++) {
                int code = s == 0f ? Nf4.ZERO_CODE : nearestCode(w[e] / s);
                packed[e >> 1] |= (byte) (code << Nf4.highNibbleShift(e));
            }
        }
        return new Nf4Tensor(rows, cols, blockSize, scalerBlockSize, packed, q, qf, mean);
    }

    /**
     * μ = mean(s) in fp32: summed in double (relative error below n·2^-53, far under an fp32 ulp), divided, and
     * rounded once, so μ is the fp32 value nearest the true mean but in the rarest near-tie cases.
     * torch has no one order to copy: on CPU it sums fp32 partials in a vectorised cascade whose shape depends on
     * the SIMD width, on CUDA (where QLoRA usually quantizes) in yet another order, so its μ can be an ulp or two
     * away. That moves an int8 scaler only when (s_b − μ)·qf lies within ulp(μ)·qf of a rounding boundary:
     * on 524288 scalers of 8 random 1024×4096 weights, 23 (0.004%) differed from torch (CPU); on the fixtures none.
     * Scalers clustered within a few ulps of μ (qf·ulp(μ) ≥ 1) are the exception, and there the dequantized
     * values still agree to about ulp(μ).
     */
    static float mean(float[] s) {
        double sum = 0;
        for (float v : s) {
            sum += v;
        }
        return (float) (sum / s.length);
    }

    /** argmin over the code book of |v − NF4[c]| in fp32, the first index on ties (as torch.argmin). */
    static int nearestCode(float v) {
        int best = 0;
        float bestDiff = Math.abs(v - Nf4.codebook(0));
        for (int c = 1; c < Nf4.CODES; c++) {
            float d = Math.abs(v - Nf4.codebook(c));
            if (d < bestDiff) {
                bestDiff = d;
                best = c;
            }
        }
        return best;
    }

    /**
     * Checks that a [rows, cols] weight can be stored with these block sizes (numel even, divided by blockSize,
     * whose quotient scalerBlockSize divides) and returns numel; otherwise says which size does not divide which.
     *
     * @param rows            the weight's rows
     * @param cols            its columns
     * @param blockSize       elements per absmax block
     * @param scalerBlockSize block scales per quantization factor
     * @return rows × cols
     */
    public static long checkSizes(int rows, int cols, int blockSize, int scalerBlockSize) {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("NF4 weight shape " + Shapes.format(rows, cols) + " must be positive");
        }
        if (blockSize <= 0 || scalerBlockSize <= 0) {
            throw new IllegalArgumentException("block_size (" + blockSize + ") and scaler_block_size ("
                    + scalerBlockSize + ") must be positive");
        }
        long numel = (long) rows * cols;
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("NF4 weight " + Shapes.format(rows, cols) + " is too large for one array");
        }
        if (numel % 2 != 0) {
            throw new IllegalArgumentException("numel " + numel + " of " + Shapes.format(rows, cols)
                    + " is odd: NF4 packs two codes per byte");
        }
        if (numel % blockSize != 0) {
            throw new IllegalArgumentException("block_size " + blockSize + " does not divide numel " + numel
                    + " of " + Shapes.format(rows, cols));
        }
        long nBlocks = numel / blockSize;
        if (nBlocks % scalerBlockSize != 0) {
            throw new IllegalArgumentException("scaler_block_size " + scalerBlockSize + " does not divide the "
                    + nBlocks + " blocks (numel " + numel + " / block_size " + blockSize + ")");
        }
        return numel;
    }

    private static void requireLength(String what, long actual, long expected, String why) {
        if (actual != expected) {
            throw new IllegalArgumentException(what + ": expected " + expected + " elements (" + why + ") but got "
                    + actual);
        }
    }

    // ---------------------------------------------------------------- decoding

    @Override
    public void decodeRows(int row0, int n, float[] dst) {
        if (row0 < 0 || n < 0 || row0 + n > rows) {
            throw new IndexOutOfBoundsException("rows [" + row0 + ", " + (row0 + n) + ") of " + rows);
        }
        decode(row0 * cols, n * cols, dst, 0);
    }

    /**
     * Decodes elements {@code [e0, e0 + count)} of the flattened weight into {@code dst[off ..]}: the format's
     * one decode, {@link Nf4#decode}.
     *
     * @param e0    the first element
     * @param count how many
     * @param dst   receives them as fp32
     * @param off   where in {@code dst} they start
     */
    public void decode(int e0, int count, float[] dst, int off) {
        Nf4.decode(packedCodes, blockScales, blockSize, e0, count, dst, off);
    }

    /**
     * The weight dequantized and rounded to bf16 (round to nearest even, as torch's {@code .to(torch.bfloat16)}),
     * as raw bf16 bits [rows, cols]: the export of torchtune's state-dict hook for a bf16 model. Decodes a row at a
     * time, so no fp32 copy of the whole weight is made.
     *
     * @return bf16 bit patterns, row-major [rows, cols]
     */
    public short[] dequantizeBf16() {
        short[] out = new short[numel()];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            decodeRows(r, 1, row);
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = BFloat16.fromFloat(row[c]);
            }
        }
        return out;
    }

    /**
     * {@return its code, 0..15}
     *
     * @param e an element of the flattened weight
     */
    public int code(int e) {
        return Nf4.code(packedCodes[e >> 1], e);
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    /** {@return rows × cols} */
    public int numel() { return rows * cols; }
    /** {@return elements per absmax block} */
    public int blockSize() { return blockSize; }
    /** {@return block scales per quantization factor} */
    public int scalerBlockSize() { return scalerBlockSize; }
    /** {@return μ, the mean of the block scales} */
    public float scalerMean() { return scalerMean; }
    /** {@return the packed codes, two a byte (not a copy: kernels read it)} */
    public byte[] packedCodes() { return packedCodes; }
    /** {@return the int8 block scales (not a copy)} */
    public byte[] quantizedScalers() { return quantizedScalers; }
    /** {@return the factors of the block scales (not a copy)} */
    public float[] quantizationFactor() { return quantizationFactor; }
    /** {@return dequantized per-block scales q_b / qf_j + μ (not a copy: kernels read it)} */
    public float[] blockScales() { return blockScales; }

    /** {@return bytes of the stored record: codes, int8 scalers, fp32 factors and the fp32 mean} */
    public long storageBytes() {
        return packedCodes.length + quantizedScalers.length + 4L * quantizationFactor.length + 4;
    }

    @Override
    public double bytesPerParameter() {
        return (double) storageBytes() / numel();
    }

    @Override
    public String toString() {
        return "Nf4Tensor" + Shapes.format(rows, cols) + "(block_size=" + blockSize + ", scaler_block_size="
                + scalerBlockSize + ", " + String.format(java.util.Locale.ROOT, "%.3f", 8 * bytesPerParameter()) + " bits/param)";
    }
}
