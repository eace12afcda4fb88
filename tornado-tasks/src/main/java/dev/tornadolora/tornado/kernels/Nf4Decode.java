package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * NF4 decoding on the device: element e of the flattened weight is {@code codebook[code(e)] · scale[e >> log2B]},
 * two codes per byte with the even element in the high nibble (torchao's layout; see {@code Nf4Tensor}).
 *
 * <p>Written for TornadoVM's OpenCL code generator: the byte is widened to int before masking (a {@code byte}
 * {@code & 0xFF} loses its zero extension there), both nibbles are masked after an arithmetic shift (so {@code >>>}
 * is never needed), and the block index is a shift, not a division (block sizes are powers of two).
 */
public final class Nf4Decode {
    private Nf4Decode() {}

    /** One element of the weight, decoded. */
    public static float element(ByteArray codes, FloatArray scales, FloatArray codebook, int e, int log2BlockSize) {
        int packed = codes.get(e >> 1);
        int code = (e & 1) == 0 ? (packed >> 4) & 0xF : packed & 0xF;
        return codebook.get(code) * scales.get(e >> log2BlockSize);
    }

    /**
     * Task (a) of the NF4 forward graph: the weight dequantized into a device-resident fp32 scratch that the fp32
     * matmul task consumes. One work-item per byte, i.e. per pair of elements of the same block.
     */
    public static void dequantize(ByteArray codes, FloatArray scales, FloatArray codebook, FloatArray w, int pairs,
                                  int log2BlockSize) {
        for (@Parallel int p = 0; p < pairs; p++) {
            int packed = codes.get(p);
            float scale = scales.get((p << 1) >> log2BlockSize);
            w.set(2 * p, codebook.get((packed >> 4) & 0xF) * scale);
            w.set(2 * p + 1, codebook.get(packed & 0xF) * scale);
        }
    }

    /** The sequential reference of {@link #dequantize}. */
    public static void dequantizeReference(byte[] codes, float[] scales, float[] codebook, float[] w, int log2BlockSize) {
        for (int e = 0; e < w.length; e++) {
            int packed = codes[e >> 1] & 0xFF;
            int code = (e & 1) == 0 ? packed >> 4 : packed & 0xF;
            w[e] = codebook[code] * scales[e >> log2BlockSize];
        }
    }
}
