package dev.tornadolora.kernels;

/**
 * A binding whose activations stay on the host ({@link HostActivations}): checks the arguments of every call and
 * hands the math to {@link #forward(float[], float[], int, Adapters, float[], float[])} and
 * {@link #backward(HostActivations, float[], float[], Adapters, Adapters)}.
 */
public abstract class HostLayer implements LayerKernels {
    protected final LayerSpec spec;
    private volatile boolean closed;

    protected HostLayer(LayerSpec spec) {
        this.spec = spec;
    }

    /** y (and h [T, rank] when the adapters are on) from x; h is null with disabled adapters. */
    protected abstract void forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] h, float[] y);

    protected abstract void backward(HostActivations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads);

    @Override
    public final int inDim() {
        return spec.inDim();
    }

    @Override
    public final int outDim() {
        return spec.outDim();
    }

    @Override
    public final int rank() {
        return spec.rank();
    }

    public LayerSpec spec() {
        return spec;
    }

    @Override
    public final Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
        requireOpen();
        spec.check(x, mask, tokens, adapters, y);
        float[] h = adapters == null ? null : new float[tokens * spec.rank()];
        forward(x, mask, tokens, adapters, h, y);
        return new HostActivations(this, x, mask, tokens, h);
    }

    @Override
    public final void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads) {
        requireOpen();
        HostActivations s = HostActivations.of(saved, this);
        checkBackward(spec, s.tokens(), s.h() != null, dy, dx, adapters, grads);
        backward(s, dy, dx, adapters, grads);
    }

    /** The checks every backend's backward makes: shapes, and adapters as the forward had them. */
    public static void checkBackward(LayerSpec spec, int tokens, boolean forwardHadAdapters, float[] dy, float[] dx,
                                     Adapters adapters, Adapters grads) {
        LayerSpec.require("dy", dy, (long) tokens * spec.outDim());
        if (dx != null) {
            LayerSpec.require("dx", dx, (long) tokens * spec.inDim());
        }
        if ((adapters != null) != forwardHadAdapters) {
            throw new IllegalArgumentException("backward: the adapters must be on or off as in the forward");
        }
        if (grads != null && adapters == null) {
            throw new IllegalArgumentException("backward: gradients asked for with disabled adapters");
        }
        spec.checkAdapters("adapters", adapters);
        spec.checkAdapters("gradients", grads);
    }

    @Override
    public void close() {
        closed = true;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this layer binding was closed");
        }
    }
}
