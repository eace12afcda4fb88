package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The command line's {@code -Dtornadolora.*} system properties as {@link DeviceOptions}, mapped here once for every
 * command that computes (the library itself reads no system property). The launcher takes them on its command line
 * ({@code ./tornado-lora finetune -Dtornadolora.threads=1}) or in {@code TORNADO_LORA_JAVA_OPTS}.
 *
 * <pre>
 *   tornadolora.threads=N               threads for every op on the device (default: all cores)
 *   tornadolora.packedWeights=false     JVM backend: no packed Wᵀ copy of an fp32 base
 *   tornadolora.schedule=CPU_PANELS|GPU_TILED          TornadoVM matmul schedule (default: by device type)
 *   tornadolora.nf4.variant=FUSED|DEQUANTIZE_TASK      TornadoVM NF4 variant (default: by batch size)
 *   tornadolora.panelLocal=XxY          TornadoVM CPU panel work-group (default 16x16)
 *   tornadolora.tornado.missing=TEXT    set by the launcher: why the TornadoVM backend is absent
 * </pre>
 */
final class BackendProperties {
    private static final Map<String, String> PROVIDER_SETTINGS = Map.of(
            "tornadolora.schedule", "schedule",
            "tornadolora.nf4.variant", "nf4.variant",
            "tornadolora.panelLocal", "panelLocal");

    private BackendProperties() {}

    /** The device a {@code --device} name selects, with the options these properties give. */
    static Device open(String device) {
        return Device.open(device, read());
    }

    static DeviceOptions read() {
        DeviceOptions options = DeviceOptions.defaults();
        String threads = System.getProperty("tornadolora.threads");
        if (threads != null) {
            int n;
            try {
                n = Integer.parseInt(threads.trim());
            } catch (NumberFormatException e) {
                n = 0;
            }
            if (n < 1) {
                throw new IllegalArgumentException("-Dtornadolora.threads: expected a positive integer, got '" + threads + "'");
            }
            options = options.withThreads(n);
        }
        String packed = System.getProperty("tornadolora.packedWeights");
        if (packed != null) {
            options = options.withPackWeights(!packed.trim().equalsIgnoreCase("false"));
        }
        Map<String, String> provider = new LinkedHashMap<>();
        PROVIDER_SETTINGS.forEach((property, setting) -> {
            String v = System.getProperty(property);
            if (v != null) {
                provider.put(setting, v.trim());
            }
        });
        return options.withAcceleratorSettings(provider)
                .withAcceleratorMissing(System.getProperty("tornadolora.tornado.missing"));
    }
}
