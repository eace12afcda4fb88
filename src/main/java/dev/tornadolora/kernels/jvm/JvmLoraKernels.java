package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.LoraKernels;
import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.kernels.ScalarLoraKernels;

/** The default CPU backend: the reference math spread over all cores by token ranges. */
public final class JvmLoraKernels implements LoraKernels {

    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        Parallel.forRange(tokens, 1, (t0, t1) -> ScalarLoraKernels.forwardTokens(p, x, m, t0, t1, h, y));
    }

    @Override
    public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy,
                         float[] dx, float[] gradA, float[] gradB) {
        if (gradA != null) {
            ScalarLoraKernels.adapterGradients(p, x, m, 0, tokens, h, dy, gradA, gradB);
        }
        if (dx != null) {
            Parallel.forRange(tokens, 1,
                    (t0, t1) -> ScalarLoraKernels.inputGradientTokens(p, m, t0, t1, dy, dx, gradA != null));
        }
    }
}
