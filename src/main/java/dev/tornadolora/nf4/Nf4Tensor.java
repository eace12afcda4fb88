package dev.tornadolora.nf4;

import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.Shapes;

/**
 * A weight [rows, cols] in the NF4 format of torchao's {@code to_nf4(weight, block_size, scaler_block_size)},
 * byte for byte, so that the same fp32 weight gives the same record in Java as in PyTorch.
 *
 * <pre>
 *   flatten row-major; per block b of blockSize elements   s_b = max |w|
 *   double quantization of the scalers:                    μ = mean(s),  s'_b = s_b − μ
 *     per scaler block j of scalerBlockSize scalers         A_j = max |s'|,  qf_j = 256 / (2·A_j)
 *                                                           q_b = clamp(round_half_even(s'_b · qf_j), −128, 127)
 *   code of element e (in block b)                          argmin_c |w_e / s_b − NF4[c]|  (first on ties)
 *   two codes per byte, the even element in the high nibble
 *   dequantized element                                     NF4[code] · (q_b / qf_j + μ)
 * </pre>
 * All arithmetic is fp32 as in torch, except μ, which is summed in double and rounded once (torch sums in a
 * cascade of fp32 partials; the two can differ by an ulp, which moves a rounding tie in rare scalers).
 *
 * <p>One deviation from torchao, on purpose: a block whose elements are all zero has s_b = 0, where torchao
 * divides 0/0 and stores NaN-driven codes (index 0, i.e. −1.0 × a non-zero scaler). Here such a block gets code 7
 * (the 0.0 entry) everywhere, so it decodes to exact zeros.
 */
public final class Nf4Tensor implements BaseWeight {

    /** The NF4 code book (bitsandbytes' / torchao's table), index 0..15. */
    static final float[] CODEBOOK = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };
    static final int ZERO_CODE = 7;

    public static final int DEFAULT_BLOCK_SIZE = 64;
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
     * Wraps a stored record, checking every length against the shape and block sizes.
     */
    public Nf4Tensor(int rows, int cols, int blockSize, int scalerBlockSize, byte[] packedCodes,
                     byte[] quantizedScalers, float[] quantizationFactor, float scalerMean) {
        long numel = checkSizes(rows, cols, blockSize, scalerBlockSize);
        long nBlocks = numel / blockSize;
        requireLength("quantized_data", packedCodes.length, numel / 2);
        requireLength("quantized_scalers", quantizedScalers.length, nBlocks);
        requireLength("quantization_factor", quantizationFactor.length, nBlocks / scalerBlockSize);
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
            blockScales[b] = quantizedScalers[b] / quantizationFactor[b / scalerBlockSize] + scalerMean;
        }
    }

    /** torchao's {@code to_nf4(w, 64, 256)}. */
    public static Nf4Tensor quantize(float[] w, int rows, int cols) {
        return quantize(w, rows, cols, DEFAULT_BLOCK_SIZE, DEFAULT_SCALER_BLOCK_SIZE);
    }

    /** torchao's {@code to_nf4(w, blockSize, scalerBlockSize)} of a row-major [rows, cols] weight. */
    public static Nf4Tensor quantize(float[] w, int rows, int cols, int blockSize, int scalerBlockSize) {
        long numel = checkSizes(rows, cols, blockSize, scalerBlockSize);
        requireLength("weight", w.length, numel);
        int nBlocks = (int) (numel / blockSize);
        float[] absmax = new float[nBlocks];
        double sum = 0;
        for (int b = 0; b < nBlocks; b++) {
            float m = 0f;
            for (int i = b * blockSize, end = i + blockSize; i < end; i++) {
                m = Math.max(m, Math.abs(w[i]));
            }
            absmax[b] = m;
            sum += m;
        }
        float mean = (float) (sum / nBlocks);

        int nScalerBlocks = nBlocks / scalerBlockSize;
        byte[] q = new byte[nBlocks];
        float[] qf = new float[nScalerBlocks];
        for (int j = 0; j < nScalerBlocks; j++) {
            float a = 0f;
            for (int b = j * scalerBlockSize; b < (j + 1) * scalerBlockSize; b++) {
                a = Math.max(a, Math.abs(absmax[b] - mean));
            }
            qf[j] = 256f / (2f * a);
            for (int b = j * scalerBlockSize; b < (j + 1) * scalerBlockSize; b++) {
                float scaled = (absmax[b] - mean) * qf[j];
                // a == 0 (all scalers equal): every s' is 0 and torch's 0·inf gives NaN; store 0.
                q[b] = Float.isNaN(scaled) ? 0 : (byte) Math.max(-128, Math.min(127, Math.rint(scaled)));
            }
        }

        byte[] packed = new byte[(int) (numel / 2)];
        for (int b = 0; b < nBlocks; b++) {
            float s = absmax[b];
            for (int e = b * blockSize, end = e + blockSize; e < end; e += 2) {
                int hi = s == 0f ? ZERO_CODE : nearestCode(w[e] / s);
                int lo = s == 0f ? ZERO_CODE : nearestCode(w[e + 1] / s);
                packed[e >> 1] = (byte) (hi << 4 | lo);
            }
        }
        return new Nf4Tensor(rows, cols, blockSize, scalerBlockSize, packed, q, qf, mean);
    }

    /** argmin over the code book of |v − NF4[c]| in fp32, the first index on ties (as torch.argmin). */
    static int nearestCode(float v) {
        int best = 0;
        float bestDiff = Math.abs(v - CODEBOOK[0]);
        for (int c = 1; c < CODEBOOK.length; c++) {
            float d = Math.abs(v - CODEBOOK[c]);
            if (d < bestDiff) {
                bestDiff = d;
                best = c;
            }
        }
        return best;
    }

    private static long checkSizes(int rows, int cols, int blockSize, int scalerBlockSize) {
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

    private static void requireLength(String what, long actual, long expected) {
        if (actual != expected) {
            throw new IllegalArgumentException(what + ": expected " + expected + " elements but got " + actual);
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
     * Decodes elements {@code [e0, e0 + count)} of the flattened weight into {@code dst[off ..]}; e0 and count
     * must be even.
     */
    public void decode(int e0, int count, float[] dst, int off) {
        for (int e = e0, end = e0 + count; e < end; e += 2) {
            int packed = packedCodes[e >> 1];
            float scale = blockScales[e / blockSize];
            dst[off++] = CODEBOOK[(packed >> 4) & 0xF] * scale;
            dst[off++] = CODEBOOK[packed & 0xF] * scale;
        }
    }

    /** The code (0..15) of element {@code e} of the flattened weight. */
    public int code(int e) {
        int packed = packedCodes[e >> 1];
        return (e & 1) == 0 ? (packed >> 4) & 0xF : packed & 0xF;
    }

    /** The NF4 code book value of a code: {@code codebook(code(e)) * blockScale(e / blockSize)} decodes e. */
    public static float codebook(int code) {
        return CODEBOOK[code];
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    public int numel() { return rows * cols; }
    public int blockSize() { return blockSize; }
    public int scalerBlockSize() { return scalerBlockSize; }
    public float scalerMean() { return scalerMean; }
    /** The packed codes (not a copy: kernels read it). */
    public byte[] packedCodes() { return packedCodes; }
    public byte[] quantizedScalers() { return quantizedScalers; }
    public float[] quantizationFactor() { return quantizationFactor; }
    /** Dequantized per-block scales q_b / qf_j + μ (not a copy: kernels read it). */
    public float[] blockScales() { return blockScales; }

    /** Bytes of the stored record: codes, int8 scalers, fp32 factors and the fp32 mean. */
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
                + scalerBlockSize + ", " + String.format("%.3f", 8 * bytesPerParameter()) + " bits/param)";
    }
}
