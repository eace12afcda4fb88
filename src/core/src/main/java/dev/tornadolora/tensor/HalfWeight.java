package dev.tornadolora.tensor;

/**
 * A frozen 16-bit base weight [rows, cols], row-major, kept as stored (BF16 or F16 bits) and decoded to fp32 by the
 * kernels a block of rows at a time, as an {@link Nf4Tensor} is. Both formats widen to fp32 exactly, so a
 * computation on this weight equals the same computation on its widened {@link DenseWeight} (bit for bit where the
 * kernel sums in the same order). Half the memory of fp32, and no fp32 copy is ever made of it.
 *
 * @param rows   the output dimension
 * @param cols   the input dimension
 * @param bits   the raw 16-bit values, row-major (shared, not copied)
 * @param format how the bits encode a number
 */
public record HalfWeight(int rows, int cols, short[] bits, Format format) implements BaseWeight {

    /** The 16-bit float formats of safetensors checkpoints. */
    public enum Format {
        /** bfloat16: the upper half of an fp32 ({@link BFloat16}). */ BF16,
        /** IEEE half precision. */ F16
    }

    /** Refuses bits whose length is not rows × cols. */
    public HalfWeight {
        if (bits.length != Shapes.numel(rows, cols)) {
            throw new IllegalArgumentException("weight: expected " + rows + "x" + cols + " values but got " + bits.length);
        }
        java.util.Objects.requireNonNull(format, "format");
    }

    /** Writes elements {@code [e0, e0 + n)} of the flattened weight, widened to fp32, to {@code dst[off ..]}. */
    public void decode(int e0, int n, float[] dst, int off) {
        if (format == Format.BF16) {
            for (int i = 0; i < n; i++) {
                dst[off + i] = Float.intBitsToFloat(bits[e0 + i] << 16);
            }
        } else {
            for (int i = 0; i < n; i++) {
                dst[off + i] = Float.float16ToFloat(bits[e0 + i]);
            }
        }
    }

    @Override
    public void decodeRows(int row0, int n, float[] dst) {
        decode(row0 * cols, n * cols, dst, 0);
    }

    @Override
    public double bytesPerParameter() {
        return 2;
    }
}
