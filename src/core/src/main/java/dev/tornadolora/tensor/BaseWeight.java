package dev.tornadolora.tensor;

/**
 * The frozen base weight W [out, in] of a LoRA layer: dense fp32 ({@link DenseWeight}), 16-bit as stored
 * ({@link HalfWeight}) or NF4 ({@link Nf4Tensor}).
 * Backends match the kinds with a pattern switch; the scalar reference reads any of them a block of rows at a time
 * ({@link #decodeRows}), so a quantized weight is decoded tile by tile and never materialised whole.
 */
public sealed interface BaseWeight permits DenseWeight, HalfWeight, Nf4Tensor {
    /** Rows of W: the layer's output dimension. */
    int rows();

    /** Columns of W: the layer's input dimension. */
    int cols();

    /** Writes rows {@code [row0, row0 + n)} of W, dequantized to fp32, into {@code dst[0 .. n*cols)}. */
    void decodeRows(int row0, int n, float[] dst);

    /** The whole weight as fp32 [rows, cols] (a fresh array; for export, not for the hot path). */
    default float[] dequantize() {
        float[] out = new float[Shapes.numel(rows(), cols())];
        decodeRows(0, rows(), out);
        return out;
    }

    /** Bytes of storage per parameter (4 for fp32, 2 for BF16/F16, about 0.52 for NF4). */
    double bytesPerParameter();
}
