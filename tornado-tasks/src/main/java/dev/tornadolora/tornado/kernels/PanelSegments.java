package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Several weights decoded by one launch into one panel buffer, end to end: the table the segment decodes
 * ({@link Nf4Decode#dequantizeSegments}, {@link HalfDecode#decodeSegments}) read. Segment s holds the panels that
 * {@link Matmul#panels} reads for c = a · B of one weight (B(k, n) = W[n, k] forward, W[k, n] backward) from
 * Float16 slot {@code start} on; its elements start at {@code element} in the weights' storage laid end to end.
 * A decode kernel runs one work-item per Float16 slot from the first segment's start to the last one's end and
 * finds its segment in the table, so a decoder layer's seven bases take one launch per direction instead of one
 * each.
 */
public final class PanelSegments {
    /** Ints per segment: start slot, k, n, first element. */
    public static final int FIELDS = 4;
    public static final int START = 0, K = 1, N = 2, ELEMENT = 3;

    private PanelSegments() {}

    /**
     * The table for weights whose B are {@code n[s]} × {@code k[s]} and whose elements start at
     * {@code element[s]}; segments follow one another in that order from slot {@code from} on.
     */
    public static int[] table(int[] n, int[] k, int[] element, int from) {
        int[] out = new int[n.length * FIELDS];
        int start = from;
        for (int s = 0; s < n.length; s++) {
            out[s * FIELDS + START] = start;
            out[s * FIELDS + K] = k[s];
            out[s * FIELDS + N] = n[s];
            out[s * FIELDS + ELEMENT] = element[s];
            start += panelSlots(n[s], k[s]);
        }
        return out;
    }

    /** Float16 slots of one weight's panels: ⌈n / 16⌉ panels of k. */
    public static int panelSlots(int n, int k) {
        return (n + Matmul.PANEL - 1) / Matmul.PANEL * k;
    }

    /** The slot after a table's last segment. */
    public static int end(int[] table) {
        int last = table.length - FIELDS;
        return table[last + START] + panelSlots(table[last + N], table[last + K]);
    }

    /** The index of the segment holding slot i (the last whose start ≤ i), branch-free; {@code count} segments. */
    public static int segment(IntArray table, int i, int count) {
        int s = 0;
        for (int j = 1; j < count; j++) {
            s += Math.max(0, Math.min(1, i - table.get(j * FIELDS + START) + 1));
        }
        return s;
    }
}
