package dev.tornadolora.tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Products of numbers a user typed (batch × gradient accumulation × sequence length, epochs × rows, steps × rows
 * per step), computed exactly and bounded: a product past its bound is refused with one line naming every factor
 * and the one to lower (the largest), instead of wrapping to a negative array size, a zero divisor or a false
 * "no counted label tokens". Every such product in the jobs goes through here; sizes of tensors read from files
 * go through {@link Shapes} and {@link HeapCheck}.
 */
public final class CheckedMath {
    /** Largest Java array length (elements) the JVM allocates safely. */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

    /** A named factor: the option or field the user gave, and its value. */
    public record Factor(String name, long value) {}

    private CheckedMath() {}

    /**
     * {@return a factor}
     *
     * @param name  the option or field it comes from ({@code --batch}, {@code batch})
     * @param value its value
     */
    public static Factor of(String name, long value) {
        return new Factor(name, value);
    }

    /**
     * {@return the product of the factors, at most {@code max}}
     *
     * @param what    what the product is, for the message ("rows per optimizer step")
     * @param max     the largest product accepted
     * @param factors the named factors, each non-negative
     * @throws IllegalArgumentException naming every factor and the largest one when the product exceeds {@code max}
     *                                  (overflowing a long included)
     */
    public static long product(String what, long max, Factor... factors) {
        long p = 1;
        boolean over = false;
        for (Factor f : factors) {
            if (f.value() < 0) throw new IllegalArgumentException(f.name() + " must be >= 0, got " + f.value());
            try {
                p = Math.multiplyExact(p, f.value());
            } catch (ArithmeticException e) {
                over = true;
            }
        }
        if (over || p > max) {
            List<String> names = new ArrayList<>(), values = new ArrayList<>();
            Factor largest = factors[0];
            for (Factor f : factors) {
                names.add(f.name());
                values.add(Long.toString(f.value()));
                if (f.value() >= largest.value()) largest = f;
            }
            throw new IllegalArgumentException(what + ": " + String.join(" × ", names) + " = "
                    + String.join(" × ", values) + (over ? " overflows" : " = " + p + " is more than " + max)
                    + "; lower " + largest.name());
        }
        return p;
    }

    /**
     * {@return the product as an int, at most {@link #MAX_ARRAY}: the length of an array it sizes}
     *
     * @param what    what the product is
     * @param factors the named factors
     */
    public static int arrayLength(String what, Factor... factors) {
        return (int) product(what, MAX_ARRAY, factors);
    }
}
