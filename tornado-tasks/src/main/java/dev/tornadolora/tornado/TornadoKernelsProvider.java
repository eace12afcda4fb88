package dev.tornadolora.tornado;

import dev.tornadolora.kernels.DeviceInfo;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tornado.plan.Schedule;
import dev.tornadolora.kernels.LoraKernelsProvider;
import uk.ac.manchester.tornado.api.TornadoBackend;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Makes the TornadoVM backend selectable as {@code tornado} (the runtime's default device) or
 * {@code tornado:B:D} (backend B, device D, as {@code tornado --devices} numbers them). Found by
 * {@link java.util.ServiceLoader} when this jar is on the class path of a JVM started with the SDK's argfile.
 */
public final class TornadoKernelsProvider implements LoraKernelsProvider {
    private volatile String unavailable;

    @Override
    public String prefix() {
        return "tornado";
    }

    @Override
    public boolean available() {
        return unavailableReason() == null;
    }

    @Override
    public String unavailableReason() {
        if (unavailable == null) {
            try {
                int n = 0;
                for (TornadoBackend b : TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends()) {
                    n += b.getNumDevices();
                }
                unavailable = n > 0 ? "" : "the TornadoVM runtime reports no device";
            } catch (Throwable t) { // NoClassDefFoundError and friends: JVM not started with the SDK's argfile
                unavailable = "the TornadoVM runtime is not loaded (start the JVM with @$TORNADOVM_HOME/tornado-argfile): " + t;
            }
        }
        return unavailable.isEmpty() ? null : unavailable;
    }

    @Override
    public List<String> deviceNames() {
        List<String> names = new ArrayList<>();
        List<TornadoBackend> backends = TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
        for (int b = 0; b < backends.size(); b++) {
            for (int d = 0; d < backends.get(b).getNumDevices(); d++) {
                names.add("tornado:" + b + ":" + d);
            }
        }
        return names;
    }

    @Override
    public List<DeviceInfo> describeDevices() {
        List<DeviceInfo> list = new ArrayList<>();
        List<TornadoBackend> backends = TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
        for (int b = 0; b < backends.size(); b++) {
            TornadoBackend backend = backends.get(b);
            for (int d = 0; d < backend.getNumDevices(); d++) {
                TornadoDevice dev = backend.getDevice(d);
                String vendor = dev.getPlatformName();
                list.add(new DeviceInfo("tornado:" + b + ":" + d, dev.getPhysicalDevice().getDeviceName(), vendor,
                        String.valueOf(backend.getBackendType()), dev.getMaxGlobalMemory(),
                        dev.getDeviceType() + ", schedule " + Schedule.forDevice(dev)));
            }
        }
        return list;
    }

    @Override
    public String acceleratorDevice() {
        List<TornadoBackend> backends = TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
        for (int b = 0; b < backends.size(); b++) {
            for (int d = 0; d < backends.get(b).getNumDevices(); d++) {
                if (backends.get(b).getDevice(d).getDeviceType() != TornadoDeviceType.CPU) {
                    return "tornado:" + b + ":" + d;
                }
            }
        }
        return null;
    }

    @Override
    public LoraBackend open(String device, Map<String, String> settings) {
        String name = device.equals("tornado") ? defaultName() : device;
        return new TornadoLoraBackend(name, resolve(name), TornadoOptions.parse(settings));
    }

    /** The device of a {@code tornado:B:D} name; throws naming the devices that exist. */
    public TornadoDevice resolve(String name) {
        String[] parts = name.split(":");
        if (parts.length != 3) {
            throw new IllegalArgumentException("device '" + name + "': expected tornado:BACKEND:DEVICE, e.g. tornado:0:0");
        }
        try {
            int b = Integer.parseInt(parts[1]), d = Integer.parseInt(parts[2]);
            if (!deviceNames().contains(name)) {
                throw new IllegalArgumentException("device '" + name + "' does not exist; available: " + deviceNames());
            }
            return TornadoExecutionPlan.getDevice(b, d);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("device '" + name + "': expected tornado:BACKEND:DEVICE, e.g. tornado:0:0");
        }
    }

    private static String defaultName() {
        TornadoDevice d = TornadoExecutionPlan.DEFAULT_DEVICE;
        List<TornadoBackend> backends = TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
        for (int b = 0; b < backends.size(); b++) {
            for (int i = 0; i < backends.get(b).getNumDevices(); i++) {
                if (backends.get(b).getDevice(i).getDeviceName().equals(d.getDeviceName())) {
                    return "tornado:" + b + ":" + i;
                }
            }
        }
        return "tornado:0:0";
    }
}
