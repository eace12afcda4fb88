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

    /** {@return the JVM backend (Vector API, all cores)} */
    public static LoraKernels jvm() {
        return JVM;
    }

    /**
     * Kernels for a device name.
     *
     * @param device {@code reference}, {@code jvm}, {@code auto}, {@code tornado} or {@code tornado:B:D}; null
     *               means {@code auto}
     * @return its kernels
     * @throws IllegalArgumentException naming the devices available, and why an accelerator is not
     */
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
                throw new IllegalArgumentException(unknownDevice(d));
        }
    }

    /** Names the accelerators go by elsewhere; here they are TornadoVM devices. */
    private static final List<String> ACCELERATOR_WORDS = List.of("gpu", "cuda", "opencl", "ptx", "spirv", "metal");

    /**
     * Why no backend serves {@code d}: for a TornadoVM name (or a word like {@code gpu}) while the TornadoVM backend
     * is absent, why it is absent: the launcher says whether it found an SDK and where it looked (system property
     * {@code tornadolora.tornado.missing}); else the devices that exist.
     */
    private static String unknownDevice(String d) {
        String lower = d.toLowerCase(java.util.Locale.ROOT);
        boolean tornadoName = lower.equals("tornado") || lower.startsWith("tornado:");
        boolean acceleratorWord = ACCELERATOR_WORDS.stream().anyMatch(lower::startsWith);
        boolean tornadoPresent = providers().stream().anyMatch(p -> p.prefix().equals("tornado"));
        String hint = acceleratorWord ? " (GPUs and other accelerators are TornadoVM devices, named tornado:BACKEND:DEVICE)" : "";
        if ((tornadoName || acceleratorWord) && !tornadoPresent) {
            String why = System.getProperty("tornadolora.tornado.missing",
                    "the TornadoVM backend is not on the class path: it needs the tornado-tasks jar and a JVM started"
                            + " with a TornadoVM SDK's tornado-argfile (see setup-tornado.sh)");
            return "device '" + d + "' is not available" + hint + ": " + why + "; available: "
                    + String.join(", ", deviceNames());
        }
        return "unknown device '" + d + "'" + hint + "; available: " + String.join(", ", deviceNames());
    }

    private static volatile LoraKernels auto;

    /**
     * The default backend, {@code auto}: the first accelerator a provider reports (a GPU, FPGA or other
     * non-CPU device), else the JVM backend. A CPU OpenCL device (PoCL) is not chosen by default: on the same
     * cores the JVM backend is faster; select it by name to use it. Resolved once per process.
     *
     * @return the default backend's kernels
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

    /** {@return the device names this process can use, for messages and the {@code devices} command} */
    public static List<String> deviceNames() {
        List<String> names = new ArrayList<>(List.of("jvm", "reference"));
        for (LoraKernelsProvider p : providers()) {
            if (p.available()) {
                names.addAll(p.deviceNames());
            }
        }
        return names;
    }

    /** {@return the accelerator backends on the class path (module path: {@code uses LoraKernelsProvider})} */
    public static List<LoraKernelsProvider> providers() {
        List<LoraKernelsProvider> list = new ArrayList<>();
        ServiceLoader.load(LoraKernelsProvider.class).forEach(list::add);
        return list;
    }
}
