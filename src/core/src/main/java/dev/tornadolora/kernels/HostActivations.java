package dev.tornadolora.kernels;

/**
 * Activations kept on the host: the forward's x and dropout multiplier (the caller's arrays, not copies; the
 * caller keeps them unchanged until backward) and h [T, rank] (null with disabled adapters). {@code owner} is the
 * binding that made them, so that a backward on another layer's activations fails instead of computing garbage.
 */
public record HostActivations(Object owner, float[] x, float[] mask, int tokens, float[] h)
        implements LayerKernels.Activations {

    /** {@code saved} as host activations of {@code owner}, or an exception saying what is wrong. */
    public static HostActivations of(LayerKernels.Activations saved, Object owner) {
        if (saved instanceof HostActivations a && a.owner == owner) {
            return a;
        }
        throw new IllegalArgumentException("backward: these activations come from another layer binding");
    }
}
