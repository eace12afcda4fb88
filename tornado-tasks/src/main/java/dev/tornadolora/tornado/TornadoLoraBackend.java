package dev.tornadolora.tornado;

import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tornado.plan.Schedule;
import dev.tornadolora.tornado.plan.TornadoLayer;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * The TornadoVM backend of one device: {@link #bind} gives each layer its own {@link TornadoLayer} (one
 * execution plan, the frozen base on the device once, activations kept on the device from forward to backward).
 * The backend itself holds nothing per layer.
 */
public final class TornadoLoraBackend implements LoraBackend {
    private final String name;
    private final TornadoDevice device;
    private final TornadoOptions options;
    private final Schedule schedule;

    public TornadoLoraBackend(String name, TornadoDevice device, TornadoOptions options) {
        this.name = name;
        this.device = device;
        this.options = options;
        this.schedule = options.schedule() != null ? options.schedule() : Schedule.forDevice(device);
    }

    @Override
    public String name() {
        return name;
    }

    public TornadoDevice device() {
        return device;
    }

    public Schedule schedule() {
        return schedule;
    }

    @Override
    public TornadoLayer bind(BaseWeight base, float[] bias, int rank, float scale) {
        return new TornadoLayer(new LayerSpec(base, bias, rank, scale), device, schedule, options);
    }

    @Override
    public String toString() {
        return name + " (" + device.getPhysicalDevice().getDeviceName() + ", " + schedule + ")";
    }
}
