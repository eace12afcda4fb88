package dev.tornadolora.kernels;

/**
 * Kernels that can say where the time of their last call went: an accelerator backend separates JIT compilation,
 * kernel execution and host–device transfers (TornadoVM's profiler). The benchmark reports these.
 */
public interface ProfilingKernels extends LoraKernels {

    /** Times of one call, in milliseconds; {@code compileMs} is non-zero on the call that compiled the kernels. */
    record Profile(double totalMs, double compileMs, double kernelMs, double transferMs) {}

    /** Turns the profiler on or off for the following calls (it costs a little time when on). */
    void setProfiling(boolean on);

    /** The profile of the last forward or backward call, or null when profiling was off. */
    Profile lastProfile();
}
