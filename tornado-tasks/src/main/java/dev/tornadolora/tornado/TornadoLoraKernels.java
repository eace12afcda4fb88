package dev.tornadolora.tornado;

import dev.tornadolora.kernels.LoraKernels;
import dev.tornadolora.kernels.ProfilingKernels;
import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.tornado.plan.Closing;
import dev.tornadolora.tornado.plan.LayerPlans;
import dev.tornadolora.tornado.plan.Nf4Variant;
import dev.tornadolora.tornado.plan.Schedule;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import java.util.Map;
import java.util.WeakHashMap;

/**
 * The TornadoVM backend of {@link LoraKernels}: each layer's frozen base moves to the device once and stays
 * there; each call copies the activations in, runs the forward or backward task graph of the layer's plan for
 * that shape, and copies the results out. One instance per device; calls are serialised (a TornadoVM execution
 * plan is not re-entrant). {@link #close()} closes every plan.
 */
public final class TornadoLoraKernels implements ProfilingKernels, AutoCloseable {
    private final String name;
    private final TornadoDevice device;
    private final Schedule schedule;
    private final Nf4Variant variant; // null: chosen per batch size (Nf4Variant.choose)
    private boolean profile;
    private final Map<LoraParams, LayerPlans> layers = new WeakHashMap<>();
    private Profile lastProfile;

    public TornadoLoraKernels(String name, TornadoDevice device) {
        this(name, device, Schedule.forDevice(device), Nf4Variant.configured(), false);
    }

    public TornadoLoraKernels(String name, TornadoDevice device, Schedule schedule, Nf4Variant variant, boolean profile) {
        this.name = name;
        this.device = device;
        this.schedule = schedule;
        this.variant = variant;
        this.profile = profile;
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
    public synchronized void setProfiling(boolean on) {
        profile = on;
        layers.values().forEach(lp -> lp.setProfiling(on));
    }

    @Override
    public synchronized Profile lastProfile() {
        return profile ? lastProfile : null;
    }

    @Override
    public synchronized void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        lastProfile = plans(p).forward(p, x, m, tokens, h, y);
    }

    @Override
    public synchronized void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy,
                                      float[] dx, float[] gradA, float[] gradB) {
        lastProfile = plans(p).backward(p, x, m, tokens, h, dy, dx, gradA, gradB);
    }

    /** The plans of a layer (created on first use, rebuilt when its base or bias was replaced). */
    public synchronized LayerPlans plans(LoraParams p) {
        LayerPlans lp = layers.get(p);
        if (lp == null || !lp.mirrors(p)) {
            if (lp != null) {
                lp.close();
            }
            lp = new LayerPlans(p, device, schedule, variant, profile);
            layers.put(p, lp);
        }
        return lp;
    }

    @Override
    public synchronized void close() {
        Closing.closeAll(layers.values());
    }

    @Override
    public String toString() {
        return name + " (" + device.getPhysicalDevice().getDeviceName() + ", " + schedule + ")";
    }
}
