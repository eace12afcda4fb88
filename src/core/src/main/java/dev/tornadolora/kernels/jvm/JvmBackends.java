package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.LoraBackend;

/**
 * Makes the {@code jvm} backend, as Lucene picks its vectorization provider: the Vector API implementation
 * ({@code VectorLoraBackend}, the only code that touches {@code jdk.incubator.vector}, loaded by name) when the
 * incubator module is readable, else {@link ScalarThreadsBackend}, the reference's loops on all cores, with one
 * log line saying how to get the fast path. A library on a user's class path thus runs either way.
 */
public final class JvmBackends {
    private static final System.Logger LOG = System.getLogger(JvmBackends.class.getName());
    private static final String VECTOR_MODULE = "jdk.incubator.vector";
    private static final String VECTOR_BACKEND = "dev.tornadolora.kernels.jvm.VectorLoraBackend";
    private static volatile boolean warned;

    private JvmBackends() {}

    /** Whether this JVM lets the library use the Vector API (started with {@code --add-modules jdk.incubator.vector}). */
    public static boolean vectorApiReadable() {
        var vector = ModuleLayer.boot().findModule(VECTOR_MODULE);
        return vector.isPresent() && JvmBackends.class.getModule().canRead(vector.get());
    }

    /** The JVM backend with these options: Vector API when readable, else scalar threads. */
    public static LoraBackend create(JvmOptions options) {
        if (vectorApiReadable()) {
            try {
                return (LoraBackend) Class.forName(VECTOR_BACKEND).getDeclaredConstructor(JvmOptions.class)
                        .newInstance(options);
            } catch (ReflectiveOperationException | LinkageError e) {
                LOG.log(System.Logger.Level.WARNING, "the Vector API backend failed to load (" + e
                        + "); using the scalar multi-threaded backend");
                return new ScalarThreadsBackend(options);
            }
        }
        if (!warned) {
            warned = true;
            LOG.log(System.Logger.Level.WARNING, "jdk.incubator.vector is not readable: the jvm backend runs"
                    + " scalar loops on " + options.threads() + " threads; add --add-modules jdk.incubator.vector"
                    + " to the java command line for the Vector API path");
        }
        return new ScalarThreadsBackend(options);
    }
}
