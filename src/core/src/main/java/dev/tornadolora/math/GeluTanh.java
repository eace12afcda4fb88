package dev.tornadolora.math;

/**
 * GELU with the tanh approximation in fp32 (PyTorch's {@code gelu(x, approximate="tanh")}, transformers'
 * {@code gelu_pytorch_tanh}), forward and backward side by side, the one source for Gemma's GeGLU
 * ({@code llama.ops.GeGlu}). With z = √(2/π)·(x + 0.044715·x³), ½(1 + tanh z) = σ(2z), so the sigmoid of
 * {@link Silu#sigmoid} (on {@link Exp#exp}, plain float arithmetic a TornadoVM kernel inlines) gives:
 * <pre>
 *   u = 2·√(2/π)·(x + 0.044715·x³)          gelu(x) = x · σ(u)
 *   gelu'(x) = σ(u) + x · σ(u)(1 − σ(u)) · 2·√(2/π)·(1 + 3·0.044715·x²)
 *   backward(dy, x) = dy · gelu'(x)
 * </pre>
 * Equal to PyTorch's {@code 0.5·x·(1 + tanh(z))} up to fp32 rounding (a few ulp; GeluTanhTest checks it against
 * the tanh form in double).
 */
public final class GeluTanh {
    /** 2·√(2/π): u = TWO_BETA·(x + KAPPA·x³). */
    public static final float TWO_BETA = (float) (2 * Math.sqrt(2 / Math.PI));
    /** The cubic coefficient of the tanh approximation. */
    public static final float KAPPA = 0.044715f;

    private GeluTanh() {}

    /**
     * {@return gelu(x), tanh approximation}
     *
     * @param x the argument
     */
    public static float gelu(float x) {
        return x * Silu.sigmoid(TWO_BETA * (x + KAPPA * x * x * x));
    }

    /**
     * {@return dy · gelu'(x), the gradient through GELU (tanh approximation)}
     *
     * @param dy the gradient of gelu(x)
     * @param x  the forward's input
     */
    public static float backward(float dy, float x) {
        float x2 = x * x;
        float s = Silu.sigmoid(TWO_BETA * (x + KAPPA * x2 * x));
        return dy * (s + x * s * (1f - s) * TWO_BETA * (1f + 3f * KAPPA * x2));
    }
}
