package dev.tornadolora.bench;

/**
 * The measurement of one workload on one device. Times are milliseconds per call; NaN where there is no value
 * (the device failed before timing, or it has no profiler).
 *
 * @param reference    what the outputs were compared with: {@code jvm} (the JVM backend), {@code reference}
 *                     (the scalar oracle, for the JVM backend itself on small workloads) or {@code none}
 * @param maxRelError  the largest relative max-norm difference over the compared outputs, max|a−b| / max|b|
 * @param error        why the device failed (an exception, or the difference beyond tolerance); null when verified
 * @param msFirst      the first call, which includes JIT compilation and moving the base to the device
 * @param compileMs    TornadoVM JIT compilation within the first call (profiling devices only)
 * @param kernelMs     median device kernel time of the timed calls (profiling devices only)
 * @param transferMs   median host-device transfer time of the timed calls (profiling devices only)
 * @param weightBytes  bytes of base weight read per call (see {@link Workload})
 * @param steady       whether warm-up reached a steady state (a call within {@link BenchRunner#STEADY} of the
 *                     fastest so far, after a third of the budget) within the budget, and the timed calls'
 *                     median is within {@link BenchRunner#UNSETTLED} times their fastest
 * @param deviceBytes  device memory the bound layer (a step: the device plan) held after the timed calls
 *                     (TornadoVM), -1 when unknown
 * @param copyInBytes  bytes host → device per call (a step: the median over the timed steps), as TornadoVM's
 *                     profiler counts them; -1 when unknown (the JVM backend moves nothing)
 * @param copyOutBytes bytes device → host per call, likewise
 * @param speedupVsJvm the JVM backend's median over this one's, NaN when the JVM backend was not measured
 */
public record BenchResult(String device, Workload workload, int reps, double msMedian, double msMin, double msMax,
                          double msFirst, boolean verified, String reference, double maxRelError, String error,
                          double compileMs, double kernelMs, double transferMs, double weightBytes,
                          boolean steady, long deviceBytes, long copyInBytes, long copyOutBytes,
                          double speedupVsJvm) {

    /** GFLOP/s at the median time. */
    public double gflops() {
        return workload.flops() / (msMedian * 1e6);
    }

    /** Effective GB/s of base-weight traffic at the median time. */
    public double gbPerSecond() {
        return weightBytes / (msMedian * 1e6);
    }

    public String status() {
        return verified ? "ok" : "FAILED";
    }

    BenchResult withSpeedup(double jvmMsMedian) {
        return new BenchResult(device, workload, reps, msMedian, msMin, msMax, msFirst, verified, reference,
                maxRelError, error, compileMs, kernelMs, transferMs, weightBytes, steady, deviceBytes, copyInBytes,
                copyOutBytes, jvmMsMedian / msMedian);
    }
}
