package dev.tornadolora.kernels;

import dev.tornadolora.kernels.jvm.JvmLoraKernels;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Chooses the kernels for a device name, Lucene-style: the scalar reference always exists, the JVM backend is
 * the default, and accelerator backends (TornadoVM) arrive through {@link LoraKernelsProvider} on the class path.
 *
 * <p>Device names: {@code reference}, {@code jvm}, {@code tornado} (the provider's default device) or
 * {@code tornado:B:D} (backend B, device D), and {@code auto}: an accelerator when one is present, else jvm.
 */
public final class Backends {
    private static final JvmLoraKernels JVM = new JvmLoraKernels();

    private Backends() {}

    public static LoraKernels jvm() {
        return JVM;
    }

    /** Kernels for the named device; throws {@link IllegalArgumentException} naming what is available. */
    public static LoraKernels forDevice(String device) {
        String d = device == null ? "auto" : device.trim();
        switch (d) {
            case "reference":
                return ScalarLoraKernels.INSTANCE;
            case "jvm":
                return JVM;
            case "auto":
                return auto();
            default:
                for (LoraKernelsProvider p : providers()) {
                    if (d.equals(p.prefix()) || d.startsWith(p.prefix() + ":")) {
                        if (!p.available()) {
                            throw new IllegalArgumentException("device '" + d + "': " + p.unavailableReason());
                        }
                        return p.open(d);
                    }
                }
                throw new IllegalArgumentException("unknown device '" + d + "'; available: " + String.join(", ", deviceNames()));
        }
    }

    private static volatile LoraKernels auto;

    /**
     * The default backend, {@code auto}: the first accelerator a provider reports (a GPU, FPGA or other
     * non-CPU device), else the JVM backend. A CPU OpenCL device (PoCL) is not chosen by default: on the same
     * cores the JVM backend is faster; select it by name to use it. Resolved once per process.
     */
    public static LoraKernels auto() {
        LoraKernels k = auto;
        if (k == null) {
            k = JVM;
            for (LoraKernelsProvider p : providers()) {
                String device = p.available() ? p.acceleratorDevice() : null;
                if (device != null) {
                    k = p.open(device);
                    break;
                }
            }
            auto = k;
        }
        return k;
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
}
