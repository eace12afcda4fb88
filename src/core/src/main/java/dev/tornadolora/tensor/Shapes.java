package dev.tornadolora.tensor;

import java.util.Arrays;

/** Shape arithmetic and the wording of shape errors, shared by every layer and loader. */
public final class Shapes {
    private Shapes() {}

    /**
     * Number of elements; rejects negative dimensions and products beyond {@code int} (Java arrays).
     *
     * @param shape the dimensions
     * @return their product
     */
    public static int numel(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + format(shape));
            n *= d;
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("shape " + format(shape) + " has more elements than a Java array holds");
            }
        }
        return (int) n;
    }

    /**
     * {@return them as {@code [2, 3]}, for messages}
     *
     * @param shape the dimensions
     */
    public static String format(int... shape) {
        return Arrays.toString(shape);
    }

    /**
     * {@return the product of all dimensions but the last: the number of rows ("tokens")}
     *
     * @param shape a (..., d) shape
     */
    public static int leadingRows(int[] shape) {
        return numel(Arrays.copyOf(shape, shape.length - 1));
    }

    /**
     * {@return a copy of the shape with its last dimension replaced}
     *
     * @param shape a shape with at least one dimension
     * @param last  the new last dimension
     */
    public static int[] withLast(int[] shape, int last) {
        int[] s = shape.clone();
        s[s.length - 1] = last;
        return s;
    }

    /**
     * Throws unless {@code actual} has at least one dimension and ends in {@code last}.
     *
     * @param what   names the tensor in the message
     * @param actual its shape
     * @param last   the last dimension it must have
     */
    public static void requireLast(String what, int[] actual, int last) {
        if (actual.length == 0 || actual[actual.length - 1] != last) {
            throw new IllegalArgumentException(what + ": expected shape [..., " + last + "] but got " + format(actual));
        }
    }

    /**
     * Throws unless {@code actual} equals {@code expected}.
     *
     * @param what     names the tensor in the message
     * @param actual   its shape
     * @param expected the shape it must have
     */
    public static void requireEqual(String what, int[] actual, int... expected) {
        if (!Arrays.equals(actual, expected)) {
            throw new IllegalArgumentException(what + ": expected shape " + format(expected) + " but got " + format(actual));
        }
    }
}
