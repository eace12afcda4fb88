package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

/**
 * Several weights decoded by one launch into one panel buffer, end to end ({@link #decode}), and the table it reads.
 * Segment s holds the panels that
 * {@link Matmul#panels} reads for c = a · B of one weight (B(k, n) = W[n, k] forward, W[k, n] backward) from
 * Float16 slot {@code start} on; its elements start at {@code element} in the weights' storage laid end to end.
 * The kernel runs one work-item per Float16 slot from the first segment's start to the last one's end and finds
 * its segment in the table, so a decoder layer's seven bases take one launch per direction instead of one each.
 * The weights are NF4 ({@code mantissaBits} 0: codes and block scales end to end, each weight's elements starting
 * at a multiple of the block size) or 16-bit ({@code mantissaBits} 7 or 10: the values end to end), decoded by the
 * formats' one decode each ({@link Nf4Decode#element}, {@link HalfDecode#element}); the format is a compile-time
 * constant, so the other one's placeholder arrays vanish from the kernel.
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

    /**
     * The panels of every segment of {@code segments} ({@code count} of them, {@code slots} Float16s from the first
     * one's start), for B = Wᵀ ({@code bTransposed} 1, forward) or W (backward); lanes past a weight's N are 0.
     * Neighbouring work-items fill neighbouring slots of a panel, along k (neighbouring codes of a row forward).
     */
    public static void decode(ByteArray codes, FloatArray scales, FloatArray codebook, ShortArray halves,
                              FloatArray powers, IntArray segments, VectorFloat16 panels, int slots, int count,
                              int bTransposed, int log2BlockSize, int mantissaBits) {
        for (@Parallel int i = 0; i < slots; i++) {
            int slot = segments.get(START) + i;
            int s = segment(segments, slot, count) * FIELDS;
            int k = segments.get(s + K);
            int n = segments.get(s + N);
            int first = segments.get(s + ELEMENT);
            int local = slot - segments.get(s + START);
            int p = local / k;
            int kk = local - p * k;
            int col = p * Matmul.PANEL;
            float v0 = element(codes, scales, codebook, halves, powers, kk, col, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v1 = element(codes, scales, codebook, halves, powers, kk, col + 1, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v2 = element(codes, scales, codebook, halves, powers, kk, col + 2, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v3 = element(codes, scales, codebook, halves, powers, kk, col + 3, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v4 = element(codes, scales, codebook, halves, powers, kk, col + 4, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v5 = element(codes, scales, codebook, halves, powers, kk, col + 5, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v6 = element(codes, scales, codebook, halves, powers, kk, col + 6, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v7 = element(codes, scales, codebook, halves, powers, kk, col + 7, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v8 = element(codes, scales, codebook, halves, powers, kk, col + 8, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v9 = element(codes, scales, codebook, halves, powers, kk, col + 9, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v10 = element(codes, scales, codebook, halves, powers, kk, col + 10, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v11 = element(codes, scales, codebook, halves, powers, kk, col + 11, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v12 = element(codes, scales, codebook, halves, powers, kk, col + 12, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v13 = element(codes, scales, codebook, halves, powers, kk, col + 13, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v14 = element(codes, scales, codebook, halves, powers, kk, col + 14, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            float v15 = element(codes, scales, codebook, halves, powers, kk, col + 15, n, k, first, bTransposed,
                    log2BlockSize, mantissaBits);
            panels.set(slot, new Float16(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15));
        }
    }

    /**
     * B(kk, col) of the weight whose elements start at {@code first}, decoded, or 0 past its last column
     * (branch-free, as {@link Nf4Decode}'s panels).
     */
    private static float element(ByteArray codes, FloatArray scales, FloatArray codebook, ShortArray halves,
                                 FloatArray powers, int kk, int col, int n, int k, int first, int bTransposed,
                                 int log2BlockSize, int mantissaBits) {
        int c = Math.min(col, n - 1);
        int inside = Math.max(0, Math.min(1, n - col));
        int e = first + bTransposed * (c * k + kk) + (1 - bTransposed) * (kk * n + c);
        float v = mantissaBits == 0 ? Nf4Decode.element(codes, scales, codebook, e, log2BlockSize)
                : HalfDecode.element(halves, powers, e, mantissaBits);
        return v * inside;
    }
}
