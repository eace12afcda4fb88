package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.HostActivations;
import dev.tornadolora.kernels.HostLayer;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.BaseWeight;

import static dev.tornadolora.kernels.ScalarLoraKernels.adapterGradients;
import static dev.tornadolora.kernels.ScalarLoraKernels.baseAndUpdate;
import static dev.tornadolora.kernels.ScalarLoraKernels.down;
import static dev.tornadolora.kernels.ScalarLoraKernels.inputGradient;
import static dev.tornadolora.kernels.ScalarLoraKernels.loraInputGradient;

/**
 * The {@code jvm} backend where the Vector API is not readable: the reference's loops
 * ({@link dev.tornadolora.kernels.ScalarLoraKernels}) split over output features (forward) and input features
 * (dx) on {@link JvmOptions#threads()} threads; the rank-sized parts run on the calling thread. Same results as
 * the reference, bit for bit, since each element is computed by the same loop.
 */
final class ScalarThreadsBackend implements LoraBackend {
    private final Parallel par;

    ScalarThreadsBackend(JvmOptions options) {
        this.par = new Parallel(options.threads());
    }

    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public String toString() {
        return "jvm (scalar, " + par.size() + " threads; no Vector API)";
    }

    @Override
    public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
        LayerSpec spec = new LayerSpec(base, bias, rank, scale);
        return new HostLayer(spec) {
            @Override
            protected void forward(float[] x, float[] m, int tokens, Adapters ad, float[] h, float[] y) {
                if (ad != null) {
                    down(spec, ad, x, m, 0, tokens, h);
                }
                par.range(spec.outDim(), 16, (j0, j1) -> baseAndUpdate(spec, ad, x, 0, tokens, j0, j1, h, y));
            }

            @Override
            protected void backward(HostActivations s, float[] dy, float[] dx, Adapters ad, Adapters grads) {
                float[] dh = ad == null ? null : loraInputGradient(spec, ad, 0, s.tokens(), dy);
                if (grads != null) {
                    adapterGradients(spec, s.x(), s.mask(), 0, s.tokens(), s.h(), dy, dh, grads);
                }
                if (dx != null) {
                    // One slice of dx per thread: each slice decodes every row of W once.
                    int slice = Math.max(64, (spec.inDim() + par.size() - 1) / par.size());
                    par.range(spec.inDim(), slice, (i0, i1) ->
                            inputGradient(spec, ad, s.mask(), 0, s.tokens(), i0, i1, dy, dh, dx));
                }
            }
        };
    }
}
