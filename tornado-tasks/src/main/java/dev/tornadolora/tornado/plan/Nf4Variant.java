package dev.tornadolora.tornado.plan;

/** How the NF4 base reaches the matmul in the forward graph; the benchmark compares the two. */
public enum Nf4Variant {
    /** (a) a dequantization task writes a device-resident fp32 scratch that the fp32 matmul task consumes. */
    DEQUANTIZE_TASK,
    /** (b) the matmul decodes NF4 inside its loop (fused dequantize-in-matmul). */
    FUSED;

    /** {@code -Dtornadolora.nf4.variant=DEQUANTIZE_TASK|FUSED}; fused by default. */
    public static Nf4Variant configured() {
        return valueOf(System.getProperty("tornadolora.nf4.variant", FUSED.name()));
    }
}
