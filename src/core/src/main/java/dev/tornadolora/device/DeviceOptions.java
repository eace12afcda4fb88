package dev.tornadolora.device;

import java.util.Map;

/**
 * How {@link Device#open} makes a device. The command line maps its {@code -Dtornadolora.*} properties onto these
 * once; the library reads no system property.
 *
 * @param threads             threads working on the device's host side, the caller's among them: the JVM backend's
 *                            kernels and every op outside the projections (norms, RoPE, attention, SwiGLU, the
 *                            loss) run on one executor of this size (default: all cores)
 * @param packWeights         JVM backend: keep an fp32 base also as packed Wᵀ panels (one more copy of the weight;
 *                            a forward over many tokens then reads it in place)
 * @param acceleratorSettings an accelerator provider's settings by name (TornadoVM: {@code schedule},
 *                            {@code nf4.variant}, {@code panelLocal}), which the provider parses
 * @param acceleratorMissing  why the accelerator backend is not on the class path, as the launcher found it (for
 *                            example that no TornadoVM SDK was found and where it looked); null: a general note
 */
public record DeviceOptions(int threads, boolean packWeights, Map<String, String> acceleratorSettings,
                            String acceleratorMissing) {
    public DeviceOptions {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        acceleratorSettings = Map.copyOf(acceleratorSettings);
    }

    /** All cores, packed weights, no accelerator settings. */
    public static DeviceOptions defaults() {
        return new DeviceOptions(Runtime.getRuntime().availableProcessors(), true, Map.of(), null);
    }

    public DeviceOptions withThreads(int n) {
        return new DeviceOptions(n, packWeights, acceleratorSettings, acceleratorMissing);
    }

    public DeviceOptions withPackWeights(boolean pack) {
        return new DeviceOptions(threads, pack, acceleratorSettings, acceleratorMissing);
    }

    public DeviceOptions withAcceleratorSettings(Map<String, String> settings) {
        return new DeviceOptions(threads, packWeights, settings, acceleratorMissing);
    }

    public DeviceOptions withAcceleratorMissing(String why) {
        return new DeviceOptions(threads, packWeights, acceleratorSettings, why);
    }
}
