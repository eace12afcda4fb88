package dev.tornadolora.tornado.kernels;

/**
 * What changes from call to call in a layer's plan, as the slots of one device {@code IntArray} (TornadoVM
 * compiles scalar arguments in as constants, so changing values must travel in arrays): the batch's token count
 * and the per-call switches. Kernels loop over the plan's capacity and skip the rows past {@link #TOKENS}.
 */
public final class Sizes {
    /** Tokens of this call (rows of x, y, dy, dx, h), at most the plan's capacity. */
    public static final int TOKENS = 0;
    /** 1 when a dropout multiplier is applied to the LoRA branch. */
    public static final int MASK = 1;
    /** 1 when the adapters are on. */
    public static final int ADAPTERS = 2;
    public static final int LENGTH = 3;

    private Sizes() {}
}
