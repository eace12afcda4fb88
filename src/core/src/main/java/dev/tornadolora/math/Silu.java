package dev.tornadolora.math;

/**
 * SiLU in fp32, the one source for {@code nn.Activation} (torch.nn.SiLU), the Llama MLP's SwiGLU
 * ({@code llama.ops.SwiGlu}, whose Vector API twin {@code VecSimd.swiGlu*} does the same operations lane-wise) and
 * the TornadoVM kernels (plain float arithmetic: TornadoVM inlines these):
 * <pre>
 *   σ(x) = 1 / (exp(−x) + 1)            exp: {@link Exp#exp}
 *   silu(x) = x · σ(x)                  silu'(x) = σ(x) · (1 + x · (1 − σ(x)))
 *   backward(dy, x) = dy · σ(x) · (1 + x · (1 − σ(x)))     evaluated left to right
 * </pre>
 */
public final class Silu {
    private Silu() {}

    /**
     * {@return σ(x)}
     *
     * @param x the argument
     */
    public static float sigmoid(float x) {
        return 1f / (Exp.exp(-x) + 1f);
    }

    /**
     * {@return x · σ(x)}
     *
     * @param x the argument
     */
    public static float silu(float x) {
        return x * sigmoid(x);
    }

    /**
     * {@return dy · silu'(x), the gradient through SiLU}
     *
     * @param dy the gradient of silu(x)
     * @param x  the forward's input
     */
    public static float backward(float dy, float x) {
        float s = sigmoid(x);
        return dy * s * (1f + x * (1f - s));
    }
}
