package dev.tornadolora.nn;

import dev.tornadolora.tensor.Shapes;

/**
 * A trainable tensor as an optimizer sees it: its name in the state dict, its values and its gradient (both live
 * arrays of the owning module, updated in place). Backends get the values with every call, so nothing needs to
 * be told when they change.
 */
public final class Parameter {
    private final String name;
    private final int[] shape;
    private final float[] data;
    private final float[] grad;

    public Parameter(String name, int[] shape, float[] data, float[] grad) {
        int n = Shapes.numel(shape);
        if (data.length != n || grad.length != n) {
            throw new IllegalArgumentException(name + ": shape " + Shapes.format(shape) + " needs " + n
                    + " values but data has " + data.length + " and grad " + grad.length);
        }
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
        this.grad = grad;
    }

    public String name() { return name; }
    public int[] shape() { return shape.clone(); }
    public float[] data() { return data; }
    public float[] grad() { return grad; }
    public int numel() { return data.length; }

    /** The same parameter under {@code prefix.name}, as a container names its children's parameters. */
    public Parameter withPrefix(String prefix) {
        return new Parameter(prefix.isEmpty() ? name : prefix + "." + name, shape, data, grad);
    }

    @Override
    public String toString() {
        return "Parameter(" + name + ", " + Shapes.format(shape) + ")";
    }
}
