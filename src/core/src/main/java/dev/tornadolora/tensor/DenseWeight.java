package dev.tornadolora.tensor;

/** An fp32 base weight [rows, cols], row-major. Kernels special-case it and read {@link #data()} directly. */
public record DenseWeight(int rows, int cols, float[] data) implements BaseWeight {

    public DenseWeight {
        if (data.length != Shapes.numel(rows, cols)) {
            throw new IllegalArgumentException("weight: expected " + rows + "x" + cols + " values but got " + data.length);
        }
    }

    @Override
    public void decodeRows(int row0, int n, float[] dst) {
        System.arraycopy(data, row0 * cols, dst, 0, n * cols);
    }

    @Override
    public double bytesPerParameter() {
        return Float.BYTES;
    }
}
