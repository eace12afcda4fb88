package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.BaseWeight;

/**
 * The {@code jvm} backend where the Vector API is not readable: the reference's loops
 * ({@link ScalarLoraKernels#layer}) on the device's threads ({@link Parallel}), bit for bit the reference's results.
 */
final class ScalarThreadsBackend implements LoraBackend {
    private final Parallel par;

    ScalarThreadsBackend(Parallel par) {
        this.par = par;
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
        return ScalarLoraKernels.layer(new LayerSpec(base, bias, rank, scale), par);
    }
}
