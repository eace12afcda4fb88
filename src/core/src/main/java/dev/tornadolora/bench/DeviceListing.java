package dev.tornadolora.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.device.Device;
import dev.tornadolora.kernels.DeviceInfo;
import dev.tornadolora.kernels.LoraKernelsProvider;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What this process can run on: the JVM backend (this machine's CPU as the Vector API sees it) and the devices
 * of every accelerator provider on the class path, or why a provider has none.
 *
 * @param accelerators devices of available providers, as the providers describe them
 * @param unavailable  providers on the class path without a usable runtime or device, with the reason
 */
public record DeviceListing(JvmInfo jvm, List<DeviceInfo> accelerators, List<Unavailable> unavailable) {

    public record Unavailable(String prefix, String reason) {}

    /**
     * The JVM backend's hardware: {@code vectorFloats} is {@code FloatVector.SPECIES_PREFERRED.length()}, 0
     * when the JVM was started without {@code --add-modules jdk.incubator.vector}.
     */
    public record JvmInfo(int cores, int vectorFloats, String cpuModel, String cpuVendor, long maxHeapBytes,
                          String javaVersion) {

        public static JvmInfo current() {
            int lanes;
            try {
                lanes = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
            } catch (LinkageError e) {
                lanes = 0;
            }
            return new JvmInfo(Runtime.getRuntime().availableProcessors(), lanes, cpuInfo("model name"),
                    cpuInfo("vendor_id"), Runtime.getRuntime().maxMemory(), System.getProperty("java.version"));
        }

        public DeviceInfo toDeviceInfo() {
            String vector = vectorFloats == 0 ? "no Vector API (jdk.incubator.vector not added)"
                    : "vector width " + vectorFloats + " floats (" + 32 * vectorFloats + "-bit)";
            return new DeviceInfo("jvm", cpuModel, cpuVendor, "JVM", maxHeapBytes,
                    cores + " cores, " + vector + ", Java " + javaVersion);
        }

        /** A field of /proc/cpuinfo (Linux), else the OS's architecture name. */
        private static String cpuInfo(String key) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    int colon = line.indexOf(':');
                    if (colon > 0 && line.substring(0, colon).trim().equals(key)) {
                        return line.substring(colon + 1).trim();
                    }
                }
            } catch (IOException | RuntimeException ignored) {
                // not Linux: fall back below
            }
            return key.equals("model name") ? System.getProperty("os.arch") : "unknown";
        }
    }

    public static DeviceListing current() {
        List<DeviceInfo> accelerators = new ArrayList<>();
        List<Unavailable> unavailable = new ArrayList<>();
        for (LoraKernelsProvider p : Device.providers()) {
            try {
                if (p.available()) {
                    accelerators.addAll(p.describeDevices());
                } else {
                    unavailable.add(new Unavailable(p.prefix(), p.unavailableReason()));
                }
            } catch (RuntimeException | LinkageError e) {
                unavailable.add(new Unavailable(p.prefix(), e.toString()));
            }
        }
        return new DeviceListing(JvmInfo.current(), accelerators, unavailable);
    }

    /** jvm, then every accelerator device: what {@code bench} measures by default. */
    public List<String> deviceNames() {
        List<String> names = new ArrayList<>(List.of("jvm"));
        accelerators.forEach(d -> names.add(d.name()));
        return names;
    }

    public String text() {
        List<DeviceInfo> all = new ArrayList<>(List.of(jvm.toDeviceInfo()));
        all.addAll(accelerators);
        int width = all.stream().mapToInt(d -> d.name().length()).max().orElse(3) + 2;
        StringBuilder sb = new StringBuilder();
        for (DeviceInfo d : all) {
            String indent = " ".repeat(width);
            sb.append(String.format(Locale.ROOT, "%-" + width + "s%s (%s)%n", d.name(), d.description(), d.vendor()));
            String memory = d.name().equals("jvm") ? "max heap " : "global memory ";
            sb.append(indent).append(d.kind()).append(", ").append(memory).append(gib(d.globalMemoryBytes()));
            if (d.details() != null && !d.details().isEmpty()) {
                sb.append(", ").append(d.details());
            }
            sb.append(System.lineSeparator());
        }
        for (Unavailable u : unavailable) {
            sb.append(String.format(Locale.ROOT, "%-" + width + "sunavailable: %s%n", u.prefix(), u.reason()));
        }
        if (accelerators.isEmpty() && unavailable.isEmpty()) {
            sb.append("no accelerator backend on the class path (TornadoVM: set TORNADOVM_HOME and run ./setup-tornado.sh)")
              .append(System.lineSeparator());
        }
        return sb.toString();
    }

    public byte[] json() throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.createObjectNode();
        var devices = root.putArray("devices");
        ObjectNode j = device(devices.addObject(), jvm.toDeviceInfo());
        j.put("cores", jvm.cores).put("vector_floats", jvm.vectorFloats).put("vector_bits", 32 * jvm.vectorFloats)
         .put("max_heap_bytes", jvm.maxHeapBytes).put("java_version", jvm.javaVersion);
        accelerators.forEach(d -> device(devices.addObject(), d));
        var un = root.putArray("unavailable");
        unavailable.forEach(u -> un.addObject().put("prefix", u.prefix()).put("reason", u.reason()));
        return mapper.writeValueAsBytes(root);
    }

    private static ObjectNode device(ObjectNode o, DeviceInfo d) {
        return o.put("name", d.name()).put("description", d.description()).put("vendor", d.vendor())
                .put("kind", d.kind()).put("global_memory_bytes", d.globalMemoryBytes()).put("details", d.details());
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }
}
