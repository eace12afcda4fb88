package dev.tornadolora.kernels.jvm;

/**
 * Options of the JVM backend, given to {@link JvmBackends#create}; the CLI maps {@code -Dtornadolora.threads} and
 * {@code -Dtornadolora.packedWeights} onto them.
 *
 * @param threads     threads working on one call, the caller's among them (default: all cores)
 * @param packWeights keep an fp32 base also as packed Wᵀ panels (one more copy of the weight; the forward over
 *                    many tokens then reads it in place instead of transposing a panel per call)
 */
public record JvmOptions(int threads, boolean packWeights) {
    public JvmOptions {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
    }

    public static JvmOptions defaults() {
        return new JvmOptions(Runtime.getRuntime().availableProcessors(), true);
    }

    public JvmOptions withThreads(int n) {
        return new JvmOptions(n, packWeights);
    }
}
