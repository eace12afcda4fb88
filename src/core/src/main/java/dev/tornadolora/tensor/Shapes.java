package dev.tornadolora.tensor;

import java.util.Arrays;

/** Shape arithmetic and the wording of shape errors, shared by every layer and loader. */
public final class Shapes {
    private Shapes() {}

    /** Number of elements; rejects negative dimensions and products beyond {@code int} (Java arrays). */
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

    public static String format(int... shape) {
        return Arrays.toString(shape);
    }

    /** Product of all dimensions but the last: the number of rows ("tokens") of a (..., d) tensor. */
    public static int leadingRows(int[] shape) {
        return numel(Arrays.copyOf(shape, shape.length - 1));
    }

    /** The shape with its last dimension replaced. */
    public static int[] withLast(int[] shape, int last) {
        int[] s = shape.clone();
        s[s.length - 1] = last;
        return s;
    }

    /** Throws unless {@code actual} has at least one dimension and ends in {@code last}. */
    public static void requireLast(String what, int[] actual, int last) {
        if (actual.length == 0 || actual[actual.length - 1] != last) {
            throw new IllegalArgumentException(what + ": expected shape [..., " + last + "] but got " + format(actual));
        }
    }

    /** Throws unless {@code actual} equals {@code expected}. */
    public static void requireEqual(String what, int[] actual, int... expected) {
        if (!Arrays.equals(actual, expected)) {
            throw new IllegalArgumentException(what + ": expected shape " + format(expected) + " but got " + format(actual));
        }
    }
}
