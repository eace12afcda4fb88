package dev.tornadolora.device;

import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.LoraKernelsProvider;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.kernels.jvm.JvmBackends;
import dev.tornadolora.kernels.Parallel;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;

/**
 * Chooses the projection backend for a device name, Lucene-style: the scalar reference always exists, the JVM
 * backend is the default, and accelerator backends (TornadoVM) arrive through {@link LoraKernelsProvider} on the
 * class path. Nothing here starts a runtime until a name asks for it; {@link Device#open} is the way in.
 */
final class Backends {
    private Backends() {}

    /** Names the accelerators go by elsewhere; here they are TornadoVM devices. */
    private static final List<String> ACCELERATOR_WORDS = List.of("gpu", "cuda", "opencl", "ptx", "spirv", "metal");

    /** What {@code acceleratorMissing} says when the launcher said nothing. */
    static final String TORNADO_MISSING = "the TornadoVM backend is not on the class path: it needs the tornado-tasks"
            + " jar and a JVM started with a TornadoVM SDK's tornado-argfile (see setup-tornado.sh)";

    /**
     * The backend a device name selects, the JVM backend on {@code executor}; throws
     * {@link IllegalArgumentException} naming what is available.
     */
    static LoraBackend select(String device, DeviceOptions options, Parallel executor) {
        switch (device) {
            case "reference":
                return ScalarLoraKernels.INSTANCE;
            case "jvm":
                return JvmBackends.create(executor, options.packWeights());
            case "auto":
                for (LoraKernelsProvider p : providers()) {
                    String accelerator = p.available() ? p.acceleratorDevice() : null;
                    if (accelerator != null) {
                        return p.open(accelerator, options.acceleratorSettings());
                    }
                }
                return JvmBackends.create(executor, options.packWeights());
            default:
                for (LoraKernelsProvider p : providers()) {
                    if (device.equals(p.prefix()) || device.startsWith(p.prefix() + ":")) {
                        if (!p.available()) {
                            throw new IllegalArgumentException("device '" + device + "': " + p.unavailableReason());
                        }
                        return p.open(device, options.acceleratorSettings());
                    }
                }
                throw new IllegalArgumentException(unknownDevice(device, options));
        }
    }

    /**
     * Why no backend serves {@code d}: for a TornadoVM name (or a word like {@code gpu}) while the TornadoVM backend
     * is absent, why it is absent ({@link DeviceOptions#acceleratorMissing}: the launcher says whether it found an
     * SDK and where it looked); else the devices that exist.
     */
    private static String unknownDevice(String d, DeviceOptions options) {
        String lower = d.toLowerCase(Locale.ROOT);
        boolean tornadoName = lower.equals("tornado") || lower.startsWith("tornado:");
        boolean acceleratorWord = ACCELERATOR_WORDS.stream().anyMatch(lower::startsWith);
        boolean tornadoPresent = providers().stream().anyMatch(p -> p.prefix().equals("tornado"));
        String hint = acceleratorWord ? " (GPUs and other accelerators are TornadoVM devices, named tornado:BACKEND:DEVICE)" : "";
        if ((tornadoName || acceleratorWord) && !tornadoPresent) {
            String why = options.acceleratorMissing() != null ? options.acceleratorMissing() : TORNADO_MISSING;
            return "device '" + d + "' is not available" + hint + ": " + why + "; available: "
                    + String.join(", ", deviceNames());
        }
        return "unknown device '" + d + "'" + hint + "; available: " + String.join(", ", deviceNames());
    }

    /** {@return the device names this process can use, for messages and the {@code devices} command} */
    static List<String> deviceNames() {
        List<String> names = new ArrayList<>(List.of("jvm", "reference"));
        for (LoraKernelsProvider p : providers()) {
            if (p.available()) {
                names.addAll(p.deviceNames());
            }
        }
        return names;
    }

    /** {@return the accelerator backends on the class path (module path: {@code uses LoraKernelsProvider})} */
    static List<LoraKernelsProvider> providers() {
        List<LoraKernelsProvider> list = new ArrayList<>();
        ServiceLoader.load(LoraKernelsProvider.class).forEach(list::add);
        return list;
    }
}
