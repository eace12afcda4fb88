package dev.tornadolora.nn;

import dev.tornadolora.tensor.Tensor;

import java.util.Locale;

/**
 * Element-wise activations with their derivatives, as {@code torch.nn.ReLU} and {@code torch.nn.SiLU}:
 * <pre>
 *   relu(x) = max(x, 0)            relu'(x) = 1 if x &gt; 0 else 0
 *   silu(x) = x · σ(x)             silu'(x) = σ(x) · (1 + x · (1 − σ(x))),   σ(x) = 1 / (1 + e^−x)
 * </pre>
 */
public final class Activation implements Module {

    public enum Kind { RELU, SILU }

    private final Kind kind;
    private Tensor savedInput;

    public Activation(Kind kind) {
        this.kind = kind;
    }

    public static Activation relu() {
        return new Activation(Kind.RELU);
    }

    public static Activation silu() {
        return new Activation(Kind.SILU);
    }

    /** {@code relu} or {@code silu} (case-insensitive); anything else is rejected naming the choices. */
    public static Activation named(String name) {
        try {
            return new Activation(Kind.valueOf(name.trim().toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown activation '" + name + "'; expected relu or silu");
        }
    }

    public Kind kind() {
        return kind;
    }

    @Override
    public Tensor forward(Tensor x) {
        float[] in = x.data();
        float[] out = new float[in.length];
        switch (kind) {
            case RELU -> {
                for (int i = 0; i < in.length; i++) out[i] = Math.max(in[i], 0f);
            }
            case SILU -> {
                for (int i = 0; i < in.length; i++) out[i] = in[i] * sigmoid(in[i]);
            }
        }
        savedInput = x;
        return new Tensor(x.shape(), out);
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor x = savedInput;
        if (x == null) {
            throw new IllegalStateException("backward called before forward");
        }
        dev.tornadolora.tensor.Shapes.requireEqual("dy", dy.shape(), x.shape());
        float[] in = x.data(), g = dy.data();
        float[] dx = new float[in.length];
        switch (kind) {
            case RELU -> {
                for (int i = 0; i < in.length; i++) dx[i] = in[i] > 0f ? g[i] : 0f;
            }
            case SILU -> {
                for (int i = 0; i < in.length; i++) {
                    float s = sigmoid(in[i]);
                    dx[i] = g[i] * s * (1f + in[i] * (1f - s));
                }
            }
        }
        return new Tensor(x.shape(), dx);
    }

    private static float sigmoid(float v) {
        return (float) (1.0 / (1.0 + Math.exp(-v)));
    }

    @Override
    public String toString() {
        return kind == Kind.RELU ? "ReLU()" : "SiLU()";
    }
}
