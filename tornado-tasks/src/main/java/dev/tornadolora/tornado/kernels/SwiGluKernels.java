package dev.tornadolora.tornado.kernels;

import dev.tornadolora.math.Silu;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * The gate of Llama's MLP on the device, elementwise; the math and its JVM twin are
 * {@code dev.tornadolora.llama.ops.SwiGlu}:
 * <pre>
 *   a  = silu(g) · u,   silu(g) = g · σ(g)
 *   dg = da · u · σ(g) · (1 + g · (1 − σ(g))),   du = da · silu(g)
 * </pre>
 */
public final class SwiGluKernels {
    private SwiGluKernels() {}

    public static void forward(FloatArray g, FloatArray u, FloatArray a, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float x = g.get(i);
            float s = Silu.sigmoid(x);
            a.set(i, x * s * u.get(i));
        }
    }

    public static void backward(FloatArray da, FloatArray g, FloatArray u, FloatArray dg, FloatArray du, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float x = g.get(i);
            float s = Silu.sigmoid(x);
            float d = da.get(i);
            dg.set(i, d * u.get(i) * s * (1f + x * (1f - s)));
            du.set(i, d * x * s);
        }
    }
}
