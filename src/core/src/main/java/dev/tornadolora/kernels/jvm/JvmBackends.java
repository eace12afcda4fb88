package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.kernels.LoraBackend;

/**
 * Makes the {@code jvm} backend, as Lucene picks its vectorization provider: the Vector API implementation
 * ({@code VectorLoraBackend}, the only code that touches {@code jdk.incubator.vector}, loaded by name) when the
 * incubator module is readable, else {@link ScalarThreadsBackend}, the reference's loops on the given threads, with
 * a log line saying how to get the fast path. A library on a user's class path thus runs either way.
 */
public final class JvmBackends {
    private static final System.Logger LOG = System.getLogger(JvmBackends.class.getName());
    private static final String VECTOR_MODULE = "jdk.incubator.vector";
    private static final String VECTOR_BACKEND = "dev.tornadolora.kernels.jvm.VectorLoraBackend";
    /** The hint is a process fact (the JVM's flags), so it is logged once per process, not once per device. */
    private static volatile boolean warned;

    private JvmBackends() {}

    /** Whether this JVM lets the library use the Vector API (started with {@code --add-modules jdk.incubator.vector}). */
    public static boolean vectorApiReadable() {
        var vector = ModuleLayer.boot().findModule(VECTOR_MODULE);
        return vector.isPresent() && JvmBackends.class.getModule().canRead(vector.get());
    }

    /**
     * The JVM backend on {@code executor} (which it does not own): Vector API when readable, else scalar threads.
     *
     * @param packWeights keep an fp32 base also as packed Wᵀ panels (one more copy of the weight; the forward over
     *                    many tokens then reads it in place instead of transposing a panel per call)
     */
    public static LoraBackend create(Parallel executor, boolean packWeights) {
        if (vectorApiReadable()) {
            try {
                return (LoraBackend) Class.forName(VECTOR_BACKEND).getDeclaredConstructor(Parallel.class, boolean.class)
                        .newInstance(executor, packWeights);
            } catch (ReflectiveOperationException | LinkageError e) {
                LOG.log(System.Logger.Level.WARNING, "the Vector API backend failed to load (" + e
                        + "); using the scalar multi-threaded backend");
                return new ScalarThreadsBackend(executor);
            }
        }
        if (!warned) {
            warned = true;
            LOG.log(System.Logger.Level.WARNING, "jdk.incubator.vector is not readable: the jvm backend runs scalar"
                    + " loops on " + executor.size() + " threads; add --add-modules jdk.incubator.vector to the java"
                    + " command line for the Vector API path");
        }
        return new ScalarThreadsBackend(executor);
    }
}
