package dev.tornadolora.tensor;

/**
 * A NaN or infinity where the numerical guards (e.g. {@code LoRALinear.setCheckFinite}) look for finite values:
 * names the tensor and the first offending element, flat and by coordinates.
 */
public final class NonFiniteException extends ArithmeticException {
    private final String tensor;
    private final int[] shape;
    private final int index;
    private final float value;

    public NonFiniteException(String tensor, int[] shape, int index, float value) {
        super("non-finite value " + value + " in " + tensor + " at index " + index + " (" + Shapes.format(coordinates(shape, index))
                + " of shape " + Shapes.format(shape) + ")");
        this.tensor = tensor;
        this.shape = shape.clone();
        this.index = index;
        this.value = value;
    }

    /** The same finding, the tensor named inside module {@code module} (e.g. {@code fc2.y}). */
    public NonFiniteException in(String module) {
        NonFiniteException e = new NonFiniteException(module + "." + tensor, shape, index, value);
        e.initCause(this);
        return e;
    }

    /** Checks every element of a tensor [shape] held in {@code data}; throws at the first NaN or infinity. */
    public static void requireFinite(String tensor, int[] shape, float[] data) {
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                throw new NonFiniteException(tensor, shape, i, data[i]);
            }
        }
    }

    public static void requireFinite(String tensor, Tensor t) {
        requireFinite(tensor, t.shape(), t.data());
    }

    /** The row-major coordinates of flat index {@code index} in {@code shape}. */
    static int[] coordinates(int[] shape, int index) {
        int[] c = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] > 0) {
                c[d] = index % shape[d];
                index /= shape[d];
            }
        }
        return c;
    }

    public String tensor() {
        return tensor;
    }

    public int index() {
        return index;
    }

    public float value() {
        return value;
    }
}
