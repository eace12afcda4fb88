package dev.tornadolora.tensor;

import java.util.Arrays;

/**
 * A dense, row-major fp32 tensor: a shape and the array that holds it. Deliberately small: the layers work on
 * the arrays, this record only carries their shape across API boundaries.
 *
 * @param shape the dimensions
 * @param data  the elements, row-major; the array is shared, not copied
 */
public record Tensor(int[] shape, float[] data) {

    /** Refuses data whose length is not the shape's number of elements. */
    public Tensor {
        shape = shape.clone();
        int n = Shapes.numel(shape);
        if (data.length != n) {
            throw new IllegalArgumentException("data of length " + data.length + " does not fill shape " + Shapes.format(shape));
        }
    }

    /**
     * {@return a tensor of zeros}
     *
     * @param shape the dimensions
     */
    public static Tensor zeros(int... shape) {
        return new Tensor(shape, new float[Shapes.numel(shape)]);
    }

    /**
     * {@return the tensor}
     *
     * @param data  the elements, row-major (shared, not copied)
     * @param shape the dimensions; their product must be {@code data.length}
     */
    public static Tensor of(float[] data, int... shape) {
        return new Tensor(shape, data);
    }

    /** {@return the number of elements} */
    public int numel() {
        return data.length;
    }

    /**
     * {@return that dimension's size}
     *
     * @param i a dimension's index; negative counts from the end, as in torch
     */
    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    /** {@return the dimensions (a copy)} */
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
