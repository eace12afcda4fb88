package dev.tornadolora.tensor;

import java.util.Locale;

/**
 * Memory checks made before allocating what a command's options or a file's shapes say it needs, so that a job too
 * large for the heap stops at once with one line saying what it needs and how to raise the limit, instead of an
 * {@link OutOfMemoryError} part way. {@link #message} is also the line the CLI prints when the JVM runs out of
 * memory anyway (sizes not known in advance).
 */
public final class HeapCheck {
    /** The environment variable the launcher passes to the JVM. */
    public static final String JAVA_OPTS = "TORNADO_LORA_JAVA_OPTS";

    private HeapCheck() {}

    /** Thrown when a job needs more heap than the JVM may use; its message is one line. */
    public static final class InsufficientMemoryException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** Bytes the job needs. */
        private final long neededBytes;

        InsufficientMemoryException(String message, long neededBytes) {
            super(message);
            this.neededBytes = neededBytes;
        }

        /** {@return the bytes of heap the job needs} */
        public long neededBytes() {
            return neededBytes;
        }
    }

    /**
     * Refuses, naming {@code what}, when {@code bytes} more than the heap can still take (the maximum heap less
     * what is in use) are needed. Negative or overflowing sizes (a product past 2^63) count as too large.
     *
     * @param bytes the size about to be allocated, or -1 (from {@link #product}/{@link #sum}) when it overflowed
     * @param what  names the job in the message ("a LoRA layer [4096, 4096] of rank 16")
     * @throws InsufficientMemoryException with one line: what, the bytes needed and free, and {@code -Xmx} advice
     */
    public static void require(long bytes, String what) {
        require(bytes, what, null);
    }

    /**
     * As {@link #require(long, String)}, the message naming first what to change ("lower --batch or --seq-len").
     *
     * @param bytes  the size about to be allocated, or -1 when it overflowed
     * @param what   names the job in the message
     * @param remedy the option to change, or null
     * @throws InsufficientMemoryException with one line: what, the bytes needed and free, the remedy, -Xmx advice
     */
    public static void require(long bytes, String what, String remedy) {
        Runtime rt = Runtime.getRuntime();
        long used = rt.totalMemory() - rt.freeMemory();
        long available = rt.maxMemory() - used;
        if (bytes > available && bytes <= rt.maxMemory()) {
            System.gc();  // only near the limit: what is in use may be mostly garbage
            used = rt.totalMemory() - rt.freeMemory();
            available = rt.maxMemory() - used;
        }
        if (bytes < 0 || bytes > available) {
            long needed = bytes < 0 ? Long.MAX_VALUE : bytes;
            throw new InsufficientMemoryException(what + " needs " + bytes(needed) + " of heap but " + bytes(available)
                    + " of the JVM's " + bytes(rt.maxMemory()) + " are free; " + (remedy == null ? "" : remedy + "; or ")
                    + advice(needed, used), needed);
        }
    }

    /**
     * {@return {@code a * b * c ...}, or -1 when a factor is negative or the product overflows a long}
     *
     * @param factors sizes and element widths
     */
    public static long product(long... factors) {
        long p = 1;
        for (long f : factors) {
            if (f < 0) return -1;
            try {
                p = Math.multiplyExact(p, f);
            } catch (ArithmeticException e) {
                return -1;
            }
        }
        return p;
    }

    /**
     * {@return {@code a + b + ...} of sizes from {@link #product}: -1 when one is -1 or the sum overflows}
     *
     * @param sizes byte counts
     */
    public static long sum(long... sizes) {
        long s = 0;
        for (long v : sizes) {
            if (v < 0) return -1;
            s += v;
            if (s < 0) return -1;
        }
        return s;
    }

    /**
     * {@return the one line for an {@link OutOfMemoryError}: the heap's limit and how to raise it}
     *
     * @param e the error the JVM threw
     */
    public static String message(OutOfMemoryError e) {
        Runtime rt = Runtime.getRuntime();
        return "out of memory (" + (e.getMessage() == null ? "heap" : e.getMessage()) + ") with a maximum heap of "
                + bytes(rt.maxMemory()) + "; give the JVM more with " + JAVA_OPTS + "=-Xmx"
                + gib(2 * rt.maxMemory()) + "g or make the job smaller";
    }

    private static String advice(long needed, long used) {
        if (needed == Long.MAX_VALUE || needed > (1L << 62)) return "no JVM heap is that large: make the job smaller";
        return "give the JVM more with " + JAVA_OPTS + "=-Xmx" + gib(needed + used + (needed + used) / 4 + (256L << 20))
                + "g or make the job smaller";
    }

    private static long gib(long bytes) {
        return Math.max(1, (bytes + (1L << 30) - 1) >> 30);
    }

    /**
     * {@return a byte count for a message: "1.5 GiB", "12.0 MiB", "512 bytes"}
     *
     * @param b bytes
     */
    public static String bytes(long b) {
        if (b >= 1L << 30) return String.format(Locale.ROOT, "%.1f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20));
        if (b >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        return b + " bytes";
    }
}
