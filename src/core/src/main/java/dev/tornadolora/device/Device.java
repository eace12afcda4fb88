package dev.tornadolora.device;

import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.LoraKernelsProvider;
import dev.tornadolora.kernels.Parallel;

import java.util.List;

/**
 * Where a model runs, resolved once at the edge (the command line, a Java program's {@code main}) and passed down
 * as a value: the projection backend that every linear layer binds to ({@link #backend()}: {@code jvm},
 * {@code reference}, a TornadoVM device) and the executor that every other op runs on ({@link #executor()}:
 * norms, RoPE, attention, SwiGLU, the loss, and the JVM backend's own kernels), both sized by one setting,
 * {@link DeviceOptions#threads()}. Nothing below a {@code Device} resolves a name or keeps a pool of its own.
 *
 * <pre>
 *   try (Device device = Device.open("auto", DeviceOptions.defaults().withThreads(4));
 *        LlamaForCausalLM model = LlamaForCausalLM.load(dir, lora, device)) { ... }
 * </pre>
 *
 * Names: {@code auto} (the first accelerator a provider reports, else {@code jvm}), {@code jvm} (Vector API, or
 * scalar threads when {@code jdk.incubator.vector} is not readable), {@code reference} (the scalar loops, for
 * checking), {@code tornado} (TornadoVM's default device) and {@code tornado:B:D} (backend B, device D).
 * {@link #close} stops the executor's threads; close the models on a device before the device.
 */
public final class Device implements AutoCloseable {
    private final String name;
    private final LoraBackend backend;
    private final Parallel executor;

    private Device(String name, LoraBackend backend, Parallel executor) {
        this.name = name;
        this.backend = backend;
        this.executor = executor;
    }

    /**
     * The device a name selects, made with {@code options}; throws {@link IllegalArgumentException} naming the
     * devices that are available (and, for a TornadoVM name without TornadoVM, why it is missing).
     */
    public static Device open(String name, DeviceOptions options) {
        String d = name == null ? "auto" : name.trim();
        Parallel executor = new Parallel(options.threads());
        try {
            return new Device(d, Backends.select(d, options, executor), executor);
        } catch (RuntimeException | Error e) {
            executor.close();
            throw e;
        }
    }

    /** {@link #open(String, DeviceOptions)} with {@link DeviceOptions#defaults()}. */
    public static Device open(String name) {
        return open(name, DeviceOptions.defaults());
    }

    /**
     * A device around a backend made elsewhere (a test's instrumented backend, a TornadoVM backend built by hand),
     * with its own executor of {@code threads}; {@link #close} stops the executor, not the backend.
     */
    public static Device of(LoraBackend backend, int threads) {
        return new Device(backend.name(), backend, new Parallel(threads));
    }

    /** The name it was opened with ({@code auto}, {@code jvm}, {@code tornado:0:0}). */
    public String name() {
        return name;
    }

    /** The backend linear layers bind to; its {@code name()} says what {@code auto} chose. */
    public LoraBackend backend() {
        return backend;
    }

    /** The executor every op outside the projection backend runs on (the JVM backend's kernels too). */
    public Parallel executor() {
        return executor;
    }

    /** {@link DeviceOptions#threads()}: how many threads work on this device's host side. */
    public int threads() {
        return executor.size();
    }

    /** Stops the executor's threads. */
    @Override
    public void close() {
        executor.close();
    }

    @Override
    public String toString() {
        return backend.toString();
    }

    /** {@return the device names this process can open, for messages and the {@code devices} command} */
    public static List<String> available() {
        return Backends.deviceNames();
    }

    /** {@return the accelerator backends on the class path (module path: {@code uses LoraKernelsProvider})} */
    public static List<LoraKernelsProvider> providers() {
        return Backends.providers();
    }
}
