package dev.tornadolora.kernels;

/**
 * Kernels that can say where the time of their last call went: an accelerator backend separates JIT compilation,
 * kernel execution and host–device transfers (TornadoVM's profiler). The benchmark reports these.
 */
public interface ProfilingKernels extends LoraKernels {

    /**
     * Times of one call, in milliseconds.
     *
     * @param totalMs    end to end
     * @param compileMs  compilation (non-zero on the call that compiled the kernels)
     * @param kernelMs   the kernels on the device
     * @param transferMs copies between host and device
     */
    record Profile(double totalMs, double compileMs, double kernelMs, double transferMs) {}

    /**
     * Turns the profiler on or off for the following calls (it costs a little time when on).
     *
     * @param on whether to profile
     */
    void setProfiling(boolean on);

    /** {@return the profile of the last forward or backward call, or null when profiling was off} */
    Profile lastProfile();
}
