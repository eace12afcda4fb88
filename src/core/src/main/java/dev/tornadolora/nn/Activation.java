package dev.tornadolora.nn;

import dev.tornadolora.math.Silu;
import dev.tornadolora.tensor.Tensor;

import java.util.Locale;

/**
 * Element-wise activations with their derivatives, as {@code torch.nn.ReLU} and {@code torch.nn.SiLU}:
 * <pre>
 *   relu(x) = max(x, 0)            relu'(x) = 1 if x &gt; 0 else 0
 *   silu(x) = x · σ(x)             silu'(x) = σ(x) · (1 + x · (1 − σ(x))),   σ(x) = 1 / (1 + e^−x)
 * </pre>
 * SiLU is the one {@link Silu} that the Llama MLP uses too.
 */
public final class Activation implements Module {

    /** Which activation. */
    public enum Kind {
        /** max(x, 0). */ RELU,
        /** x · σ(x). */ SILU
    }

    private final Kind kind;
    private Tensor savedInput;

    /**
     * An activation of the given kind.
     *
     * @param kind which activation
     */
    public Activation(Kind kind) {
        this.kind = kind;
    }

    /** {@return a ReLU, as {@code torch.nn.ReLU}} */
    public static Activation relu() {
        return new Activation(Kind.RELU);
    }

    /** {@return a SiLU, as {@code torch.nn.SiLU}} */
    public static Activation silu() {
        return new Activation(Kind.SILU);
    }

    /**
     * {@return that activation}
     *
     * @param name {@code relu} or {@code silu} (case-insensitive); anything else is rejected naming the choices
     */
    public static Activation named(String name) {
        try {
            return new Activation(Kind.valueOf(name.trim().toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown activation '" + name + "'; expected relu or silu");
        }
    }

    /** {@return which activation} */
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
                for (int i = 0; i < in.length; i++) out[i] = Silu.silu(in[i]);
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
                for (int i = 0; i < in.length; i++) dx[i] = Silu.backward(g[i], in[i]);
            }
        }
        return new Tensor(x.shape(), dx);
    }

    @Override
    public String toString() {
        return kind == Kind.RELU ? "ReLU()" : "SiLU()";
    }
}
