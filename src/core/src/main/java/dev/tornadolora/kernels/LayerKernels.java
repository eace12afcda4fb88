package dev.tornadolora.kernels;

/**
 * The two operations of one bound LoRA layer (see {@link LoraBackend#bind}). With x [T, in] (T tokens), the
 * dropout multiplier m [T, in] (0 or 1/(1-p) per element; null for none) and s = alpha/rank:
 *
 * <pre>
 *   forward:   h  = (x ⊙ m) · Aᵀ                         [T, rank]
 *              y  = x · Wᵀ + b + s · h · Bᵀ               [T, out]
 *   backward:  dB += s · dyᵀ · h                          [out, rank]
 *              dh  = s · dy · B                           [T, rank]
 *              dA += dhᵀ · (x ⊙ m)                        [rank, in]
 *              dx  = dy · W + (dh · A) ⊙ m                [T, in]
 * </pre>
 *
 * {@code adapters == null} means the adapters are disabled: y = x·Wᵀ + b and dx = dy·W. Forward returns the
 * {@link Activations} its backward consumes (a backend may keep them on its device); {@code backward} gets the
 * same adapters again and accumulates into {@code grads} (null with disabled adapters); {@code dx == null} skips
 * the input gradient. Outputs are overwritten, gradients accumulate. W is never differentiated.
 *
 * <p>Forward may run on several threads at once; a backend that cannot run calls concurrently serialises them.
 */
public interface LayerKernels extends AutoCloseable {

    int inDim();

    int outDim();

    int rank();

    Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y);

    void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads);

    /** Frees what the binding holds (device buffers, plans, packed weights); later calls fail. */
    @Override
    void close();

    /** What a forward keeps for its backward; opaque, owned by the {@link LayerKernels} that made it. */
    interface Activations {
        int tokens();
    }

    /**
     * Where the time of the last call went on a backend that can tell: an accelerator separates JIT compilation,
     * kernel execution and host–device transfers (TornadoVM's profiler). The benchmark reports these.
     */
    interface Profiling {
        /** Times of one call, in milliseconds; {@code compileMs} is non-zero on the call that compiled kernels. */
        record Profile(double totalMs, double compileMs, double kernelMs, double transferMs) {}

        void setProfiling(boolean on);

        /** The profile of the last forward or backward, or null when profiling was off. */
        Profile lastProfile();

        /** Bytes this layer holds on its device now (base, buffers, plans), or -1 when unknown. */
        long deviceBytes();
    }
}
