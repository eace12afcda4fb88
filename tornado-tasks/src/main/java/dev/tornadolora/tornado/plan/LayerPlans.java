package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.kernels.ProfilingKernels;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The plans of one layer, one per batch shape (token count, dropout on/off, adapters on/off), kept least recently
 * used first. At most {@link #MAX_PLANS} live at once, since each holds its own device copy of the base.
 */
public final class LayerPlans implements AutoCloseable {
    static final int MAX_PLANS = 4;

    private record Shape(int tokens, boolean mask, boolean adapters) {}

    private final DeviceWeights weights;
    private final TornadoDevice device;
    private final Schedule schedule;
    private final Nf4Variant variant; // null: chosen per batch size
    private boolean profile;
    private final LinkedHashMap<Shape, LoraLayerPlan> plans = new LinkedHashMap<>(8, 0.75f, true);
    private LoraLayerPlan lastRun;

    public LayerPlans(LoraParams p, TornadoDevice device, Schedule schedule, Nf4Variant variant, boolean profile) {
        this.weights = new DeviceWeights(p, schedule);
        this.device = device;
        this.schedule = schedule;
        this.variant = variant;
        this.profile = profile;
    }

    /** Whether the device copy still mirrors the layer's base and bias. */
    public boolean mirrors(LoraParams p) {
        return weights.mirrors(p);
    }

    /** The plan of a shape, built (and compiled on its first run) when new. */
    public LoraLayerPlan plan(int tokens, boolean mask, boolean adapters) {
        Shape key = new Shape(tokens, mask, adapters);
        LoraLayerPlan plan = plans.get(key);
        if (plan == null) {
            if (plans.size() >= MAX_PLANS) {
                Map.Entry<Shape, LoraLayerPlan> eldest = plans.entrySet().iterator().next();
                plans.remove(eldest.getKey());
                eldest.getValue().close();
            }
            plan = new LoraLayerPlan(weights, tokens, mask, adapters, device, schedule, Nf4Variant.choose(variant, tokens),
                    profile);
            plans.put(key, plan);
        }
        return plan;
    }

    public void setProfiling(boolean on) {
        profile = on;
        plans.values().forEach(plan -> plan.setProfiling(on));
    }

    /** Forward of one call; returns its profile when profiling is on, else null. */
    public ProfilingKernels.Profile forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        LoraLayerPlan plan = plan(tokens, m != null, h != null);
        load(p, plan, x, m);
        plan.forward();
        lastRun = plan;
        DeviceWeights.copyOut(plan.y, y);
        if (h != null) {
            DeviceWeights.copyOut(plan.h, h);
        }
        return plan.profile();
    }

    /** Backward of one call; returns its profile when profiling is on, else null. */
    public ProfilingKernels.Profile backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy, float[] dx,
                         float[] gradA, float[] gradB) {
        LoraLayerPlan plan = plan(tokens, m != null, gradA != null);
        load(p, plan, x, m);
        if (!plan.forwardRan()) {
            plan.forward(); // puts the base on the device for the backward graph to consume
        }
        if (gradA != null) {
            DeviceWeights.copyIn(h, plan.h);
            DeviceWeights.copyIn(gradA, plan.gradA);
            DeviceWeights.copyIn(gradB, plan.gradB);
        }
        DeviceWeights.copyIn(dy, plan.dy);
        plan.backward();
        lastRun = plan;
        if (dx != null) {
            DeviceWeights.copyOut(plan.dx, dx);
        }
        if (gradA != null) {
            DeviceWeights.copyOut(plan.gradA, gradA);
            DeviceWeights.copyOut(plan.gradB, gradB);
        }
        return plan.profile();
    }

    /** TornadoVM's per-task profile log (JSON) of the last call, or null when profiling is off. */
    public String lastProfileLog() {
        return lastRun == null ? null : lastRun.profileLog();
    }

    private void load(LoraParams p, LoraLayerPlan plan, float[] x, float[] m) {
        weights.refreshAdapters(p);
        DeviceWeights.copyIn(x, plan.x);
        if (m != null) {
            DeviceWeights.copyIn(m, plan.mask);
        }
    }

    @Override
    public void close() {
        Closing.closeAll(plans.values());
    }
}
