package dev.tornadolora.tensor;

import java.util.Arrays;

/**
 * A dense, row-major fp32 tensor: a shape and the array that holds it. Deliberately small: the layers work on
 * the arrays, this record only carries their shape across API boundaries.
 */
public record Tensor(int[] shape, float[] data) {

    public Tensor {
        shape = shape.clone();
        int n = Shapes.numel(shape);
        if (data.length != n) {
            throw new IllegalArgumentException("data of length " + data.length + " does not fill shape " + Shapes.format(shape));
        }
    }

    public static Tensor zeros(int... shape) {
        return new Tensor(shape, new float[Shapes.numel(shape)]);
    }

    public static Tensor of(float[] data, int... shape) {
        return new Tensor(shape, data);
    }

    public int numel() {
        return data.length;
    }

    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && Arrays.equals(shape, t.shape) && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Tensor" + Shapes.format(shape);
    }
}
