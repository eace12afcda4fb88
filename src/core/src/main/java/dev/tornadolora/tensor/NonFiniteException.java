package dev.tornadolora.tensor;

/**
 * A NaN or infinity where the numerical guards (e.g. {@code LoRALinear.setCheckFinite}) look for finite values:
 * names the tensor and the first offending element, flat and by coordinates.
 */
public final class NonFiniteException extends ArithmeticException {
    /** The tensor's name. */
    private final String tensor;
    /** The tensor's shape. */
    private final int[] shape;
    /** The flat index of the first non-finite element. */
    private final int index;
    /** That element. */
    private final float value;

    /**
     * A finding in a tensor.
     *
     * @param tensor names the tensor, e.g. {@code y} or {@code fc2.lora_a.weight.grad}
     * @param shape  its shape
     * @param index  the flat index of the first non-finite element
     * @param value  that element
     */
    public NonFiniteException(String tensor, int[] shape, int index, float value) {
        super("non-finite value " + value + " in " + tensor + " at index " + index + " (" + Shapes.format(coordinates(shape, index))
                + " of shape " + Shapes.format(shape) + ")");
        this.tensor = tensor;
        this.shape = shape.clone();
        this.index = index;
        this.value = value;
    }

    /**
     * {@return the same finding, the tensor named inside that module (e.g. {@code fc2.y})}
     *
     * @param module the enclosing module's name
     */
    public NonFiniteException in(String module) {
        NonFiniteException e = new NonFiniteException(module + "." + tensor, shape, index, value);
        e.initCause(this);
        return e;
    }

    /**
     * Checks every element; throws at the first NaN or infinity.
     *
     * @param tensor names the tensor in the message
     * @param shape  its shape
     * @param data   its elements, row-major
     */
    public static void requireFinite(String tensor, int[] shape, float[] data) {
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                throw new NonFiniteException(tensor, shape, i, data[i]);
            }
        }
    }

    /**
     * Checks every element; throws at the first NaN or infinity.
     *
     * @param tensor names the tensor in the message
     * @param t      the tensor
     */
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

    /** {@return the tensor's name} */
    public String tensor() {
        return tensor;
    }

    /** {@return the flat index of the first non-finite element} */
    public int index() {
        return index;
    }

    /** {@return that element: NaN or an infinity} */
    public float value() {
        return value;
    }
}
