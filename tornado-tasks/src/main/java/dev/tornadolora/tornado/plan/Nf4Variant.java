package dev.tornadolora.tornado.plan;

/** How the NF4 base reaches the matmul in the forward graph; the benchmark compares the two. */
public enum Nf4Variant {
    /** (a) a dequantization task writes a device-resident fp32 scratch that the fp32 matmul task consumes. */
    DEQUANTIZE_TASK,
    /** (b) the matmul decodes NF4 inside its loop (fused dequantize-in-matmul). */
    FUSED;

    /** Batches of at least this many tokens dequantize first: the decode is then shared by many rows. */
    public static final int DEQUANTIZE_FROM_TOKENS = 16;

    /**
     * The variant for a plan's token capacity: {@code forced} when given, else the fused kernel for a few tokens (the weight is
     * read once either way, and decoding in the loop saves writing and reading a scratch) and the dequantize task
     * for larger batches (the fp32 panel matmul is several times faster than decoding in the loop).
     */
    public static Nf4Variant choose(Nf4Variant forced, int tokens) {
        return forced != null ? forced : tokens >= DEQUANTIZE_FROM_TOKENS ? DEQUANTIZE_TASK : FUSED;
    }
}
