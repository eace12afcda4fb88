package dev.tornadolora.kernels;

import dev.tornadolora.kernels.jvm.JvmBackends;
import dev.tornadolora.kernels.jvm.JvmOptions;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Chooses a backend for a device name, Lucene-style: the scalar reference always exists, the JVM backend is
 * the default, and accelerator backends (TornadoVM) arrive through {@link LoraKernelsProvider} on the class path.
 *
 * <p>Device names: {@code reference}, {@code jvm}, {@code tornado} (the provider's default device) or
 * {@code tornado:B:D} (backend B, device D), and {@code auto}: an accelerator when one is present, else jvm.
 * Nothing here starts a runtime until a name asks for it. Backends are made with {@link BackendOptions}; the
 * default-options JVM backend is made once per process (its threads start on first use).
 */
public final class Backends {
    private static volatile LoraBackend defaultJvm;

    private Backends() {}

    /** The JVM backend with default options. */
    public static LoraBackend jvm() {
        LoraBackend b = defaultJvm;
        if (b == null) {
            synchronized (Backends.class) {
                b = defaultJvm;
                if (b == null) {
                    defaultJvm = b = JvmBackends.create(JvmOptions.defaults());
                }
            }
        }
        return b;
    }

    public static LoraBackend reference() {
        return ScalarLoraKernels.INSTANCE;
    }

    /** The backend for a device name, with default options. */
    public static LoraBackend forDevice(String device) {
        return forDevice(device, BackendOptions.defaults());
    }

    /** The backend for a device name; throws {@link IllegalArgumentException} naming what is available. */
    public static LoraBackend forDevice(String device, BackendOptions options) {
        String d = device == null ? "auto" : device.trim();
        switch (d) {
            case "reference":
                return ScalarLoraKernels.INSTANCE;
            case "jvm":
                return options.jvm().equals(JvmOptions.defaults()) ? jvm() : JvmBackends.create(options.jvm());
            case "auto":
                return auto(options);
            default:
                for (LoraKernelsProvider p : providers()) {
                    if (d.equals(p.prefix()) || d.startsWith(p.prefix() + ":")) {
                        if (!p.available()) {
                            throw new IllegalArgumentException("device '" + d + "': " + p.unavailableReason());
                        }
                        return p.open(d, options.provider());
                    }
                }
                throw new IllegalArgumentException("unknown device '" + d + "'; available: " + String.join(", ", deviceNames()));
        }
    }

    /**
     * {@code auto}: the first accelerator a provider reports (a GPU, FPGA or other non-CPU device), else the JVM
     * backend. A CPU OpenCL device (PoCL) is not chosen by default: on the same cores the JVM backend is faster;
     * select it by name to use it.
     */
    public static LoraBackend auto(BackendOptions options) {
        for (LoraKernelsProvider p : providers()) {
            String device = p.available() ? p.acceleratorDevice() : null;
            if (device != null) {
                return p.open(device, options.provider());
            }
        }
        return forDevice("jvm", options);
    }

    /** The device names this process can use, for messages and the {@code devices} command. */
    public static List<String> deviceNames() {
        List<String> names = new ArrayList<>(List.of("jvm", "reference"));
        for (LoraKernelsProvider p : providers()) {
            if (p.available()) {
                names.addAll(p.deviceNames());
            }
        }
        return names;
    }

    public static List<LoraKernelsProvider> providers() {
        List<LoraKernelsProvider> list = new ArrayList<>();
        ServiceLoader.load(LoraKernelsProvider.class).forEach(list::add);
        return list;
    }

    /**
     * Options for the backends a name resolves to: the JVM backend's, and a provider's as settings by name
     * (TornadoVM: {@code schedule}, {@code nf4.variant}, {@code panelLocal}), which the provider parses.
     */
    public record BackendOptions(JvmOptions jvm, Map<String, String> provider) {
        public BackendOptions {
            provider = Map.copyOf(provider);
        }

        public static BackendOptions defaults() {
            return new BackendOptions(JvmOptions.defaults(), Map.of());
        }
    }
}
