package dev.tornadolora.cli;

import dev.tornadolora.kernels.Backends.BackendOptions;
import dev.tornadolora.kernels.jvm.JvmOptions;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The command line's {@code -Dtornadolora.*} system properties as backend options, read where a command makes its
 * backends (the library itself reads no system property):
 *
 * <pre>
 *   tornadolora.threads=N               JVM backend threads (default: all cores)
 *   tornadolora.packedWeights=false     JVM backend: no packed Wᵀ copy of an fp32 base
 *   tornadolora.schedule=CPU_PANELS|GPU_TILED          TornadoVM matmul schedule (default: by device type)
 *   tornadolora.nf4.variant=FUSED|DEQUANTIZE_TASK      TornadoVM NF4 variant (default: by batch size)
 *   tornadolora.panelLocal=XxY          TornadoVM CPU panel work-group (default 16x16)
 * </pre>
 */
final class BackendProperties {
    private static final Map<String, String> PROVIDER_SETTINGS = Map.of(
            "tornadolora.schedule", "schedule",
            "tornadolora.nf4.variant", "nf4.variant",
            "tornadolora.panelLocal", "panelLocal");

    private BackendProperties() {}

    static BackendOptions read() {
        JvmOptions jvm = JvmOptions.defaults();
        String threads = System.getProperty("tornadolora.threads");
        if (threads != null) {
            try {
                jvm = jvm.withThreads(Integer.parseInt(threads.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("-Dtornadolora.threads: expected a positive integer, got '" + threads + "'");
            }
        }
        String packed = System.getProperty("tornadolora.packedWeights");
        if (packed != null) {
            jvm = new JvmOptions(jvm.threads(), !packed.trim().equalsIgnoreCase("false"));
        }
        Map<String, String> provider = new LinkedHashMap<>();
        PROVIDER_SETTINGS.forEach((property, setting) -> {
            String v = System.getProperty(property);
            if (v != null) {
                provider.put(setting, v.trim());
            }
        });
        return new BackendOptions(jvm, provider);
    }
}
