package dev.tornadolora.tornado.kernels;

import dev.tornadolora.math.Nf4;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

/**
 * NF4 decoding on the device, a schedule of the format's one decode, {@link Nf4}: element e of the flattened
 * weight is {@code codebook[Nf4.code(byte, e)] · scale[e >> log2B]} (the code book as a device buffer of
 * {@link Nf4#codebook()}), so it gives {@link Nf4#decode}'s bits (Nf4DecodeTest, MatmulKernelsTest).
 *
 * <p>Written for TornadoVM's OpenCL code generator: the byte is widened to int before {@link Nf4#code(int, int)}
 * masks it (a {@code byte & 0xFF} loses its zero extension there), both nibbles are masked after an arithmetic
 * shift (so {@code >>>} is never needed), and the block index is a shift, not a division (block sizes are powers
 * of two).
 */
public final class Nf4Decode {
    private Nf4Decode() {}

    /** One element of the weight, decoded. */
    public static float element(ByteArray codes, FloatArray scales, FloatArray codebook, int e, int log2BlockSize) {
        int packed = codes.get(e >> 1);
        return codebook.get(Nf4.code(packed, e)) * scales.get(e >> log2BlockSize);
    }

    /**
     * Task (a) of the NF4 forward graph: the weight dequantized into a device-resident fp32 scratch that the fp32
     * matmul task consumes. One work-item per byte, i.e. per pair of elements of the same block.
     */
    public static void dequantize(ByteArray codes, FloatArray scales, FloatArray codebook, FloatArray w, int pairs,
                                  int log2BlockSize) {
        for (@Parallel int p = 0; p < pairs; p++) {
            int packed = codes.get(p);
            int e = p << 1;
            float scale = scales.get(e >> log2BlockSize);
            w.set(e, codebook.get(Nf4.code(packed, e)) * scale);
            w.set(e + 1, codebook.get(Nf4.code(packed, e + 1)) * scale);
        }
    }

    /**
     * Task (a) on CPUs: the weight dequantized straight into the panels that {@link Matmul#panels} reads, for
     * c = a · B with B(k, n) = W[n, k] ({@code bTransposed = 1}, forward) or W[k, n] (backward); lanes past N are 0.
     */
    public static void dequantizePanels(ByteArray codes, FloatArray scales, FloatArray codebook, VectorFloat16 panels,
                                        int k, int nPanels, int n, int bTransposed, int log2BlockSize) {
        // Dimension 0 runs along k: neighbouring work-items read neighbouring codes of a row and fill neighbouring
        // panel slots.
        for (@Parallel int kk = 0; kk < k; kk++) {
            for (@Parallel int p = 0; p < nPanels; p++) {
                int col = p * Matmul.PANEL;
                float v0 = panelElement(codes, scales, codebook, kk, col, n, k, bTransposed, log2BlockSize);
                float v1 = panelElement(codes, scales, codebook, kk, col + 1, n, k, bTransposed, log2BlockSize);
                float v2 = panelElement(codes, scales, codebook, kk, col + 2, n, k, bTransposed, log2BlockSize);
                float v3 = panelElement(codes, scales, codebook, kk, col + 3, n, k, bTransposed, log2BlockSize);
                float v4 = panelElement(codes, scales, codebook, kk, col + 4, n, k, bTransposed, log2BlockSize);
                float v5 = panelElement(codes, scales, codebook, kk, col + 5, n, k, bTransposed, log2BlockSize);
                float v6 = panelElement(codes, scales, codebook, kk, col + 6, n, k, bTransposed, log2BlockSize);
                float v7 = panelElement(codes, scales, codebook, kk, col + 7, n, k, bTransposed, log2BlockSize);
                float v8 = panelElement(codes, scales, codebook, kk, col + 8, n, k, bTransposed, log2BlockSize);
                float v9 = panelElement(codes, scales, codebook, kk, col + 9, n, k, bTransposed, log2BlockSize);
                float v10 = panelElement(codes, scales, codebook, kk, col + 10, n, k, bTransposed, log2BlockSize);
                float v11 = panelElement(codes, scales, codebook, kk, col + 11, n, k, bTransposed, log2BlockSize);
                float v12 = panelElement(codes, scales, codebook, kk, col + 12, n, k, bTransposed, log2BlockSize);
                float v13 = panelElement(codes, scales, codebook, kk, col + 13, n, k, bTransposed, log2BlockSize);
                float v14 = panelElement(codes, scales, codebook, kk, col + 14, n, k, bTransposed, log2BlockSize);
                float v15 = panelElement(codes, scales, codebook, kk, col + 15, n, k, bTransposed, log2BlockSize);
                panels.set(p * k + kk, new Float16(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14,
                        v15));
            }
        }
    }

    /** B(kk, col) decoded, or 0 past the last column (branch-free: TornadoVM's compiler rejects the branchy form). */
    private static float panelElement(ByteArray codes, FloatArray scales, FloatArray codebook, int kk, int col, int n,
                                      int k, int bTransposed, int log2BlockSize) {
        int c = Math.min(col, n - 1);
        int inside = Math.max(0, Math.min(1, n - col));
        int e = bTransposed * (c * k + kk) + (1 - bTransposed) * (kk * n + c);
        float v = element(codes, scales, codebook, e, log2BlockSize);
        return v * inside;
    }
}
