package dev.tornadolora.testing;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;

/** A binding that hands every call to another one; tests override what they observe or change. */
public class DelegatingKernels implements LayerKernels {
    protected final LayerKernels inner;

    public DelegatingKernels(LayerKernels inner) {
        this.inner = inner;
    }

    @Override public int inDim() { return inner.inDim(); }
    @Override public int outDim() { return inner.outDim(); }
    @Override public int rank() { return inner.rank(); }

    @Override
    public Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
        return inner.forward(x, mask, tokens, adapters, y);
    }

    @Override
    public void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads) {
        inner.backward(saved, dy, dx, adapters, grads);
    }

    @Override
    public void close() {
        inner.close();
    }
}
