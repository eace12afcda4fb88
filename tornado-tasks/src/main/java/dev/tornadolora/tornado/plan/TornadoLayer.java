package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.HostLayer;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.tornado.TornadoOptions;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.Sizes;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * A layer bound on a TornadoVM device: its frozen base and bias as {@link DeviceWeights} (made once), and one
 * {@link LoraLayerPlan} for batches up to a token capacity. A larger batch re-plans once for the larger capacity
 * (at least double the old one) and frees the old plan, so the base is on the device once whatever the batch
 * sizes. Forward leaves x, the mask and h on the device for the backward of the same batch; a backward whose
 * activations were overwritten by a later forward (another thread, another batch) runs that forward again first.
 * Calls are serialised: an execution plan is not re-entrant.
 */
public final class TornadoLayer implements LayerKernels, LayerKernels.Profiling {
    private final LayerSpec spec;
    private final TornadoDevice device;
    private final Schedule schedule;
    private final TornadoOptions options;
    private final DeviceWeights weights;
    private LoraLayerPlan plan;
    private boolean profile;
    private boolean closed;
    private Profile lastProfile;

    /** What the device holds for a backward: the plan and forward run, and the host arrays to redo it from. */
    private record DeviceActivations(TornadoLayer owner, LoraLayerPlan plan, long generation, float[] x, float[] mask,
                                     int tokens, boolean adapters) implements Activations {}

    public TornadoLayer(LayerSpec spec, TornadoDevice device, Schedule schedule, TornadoOptions options) {
        this.spec = spec;
        this.device = device;
        this.schedule = schedule;
        this.options = options;
        this.weights = new DeviceWeights(spec, schedule);
    }

    @Override public int inDim() { return spec.inDim(); }
    @Override public int outDim() { return spec.outDim(); }
    @Override public int rank() { return spec.rank(); }

    /** The token capacity of the current plan (0 before the first call). */
    public synchronized int capacity() {
        return plan == null ? 0 : plan.capacity;
    }

    /** The NF4 variant of the current plan (null for an fp32 base or before the first call). */
    public synchronized Nf4Variant variant() {
        return plan == null ? null : plan.variant;
    }

    /** Bytes of one device copy of the frozen base in its device layout(s). */
    public long baseBytes() {
        return weights.baseBytes();
    }

    @Override
    public synchronized Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
        requireOpen();
        spec.check(x, mask, tokens, adapters, y);
        if (tokens == 0) {
            return new DeviceActivations(this, null, 0, x, mask, 0, adapters != null);
        }
        LoraLayerPlan p = planFor(tokens);
        long generation = runForward(p, x, mask, tokens, adapters);
        DeviceWeights.copyOut(p.y, y, tokens * spec.outDim());
        lastProfile = p.profile();
        return new DeviceActivations(this, p, generation, x, mask, tokens, adapters != null);
    }

    @Override
    public synchronized void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads) {
        requireOpen();
        if (!(saved instanceof DeviceActivations s) || s.owner != this) {
            throw new IllegalArgumentException("backward: these activations come from another layer binding");
        }
        HostLayer.checkBackward(spec, s.tokens, s.adapters, dy, dx, adapters, grads);
        if (s.tokens == 0) {
            return;
        }
        LoraLayerPlan p = plan;
        if (s.plan != p || !p.holds(s.generation)) {
            // Another forward ran since (or the plan grew): put this batch's activations back on the device.
            p = planFor(s.tokens);
            runForward(p, s.x, s.mask, s.tokens, adapters);
        }
        int in = spec.inDim(), out = spec.outDim();
        DeviceWeights.copyIn(dy, p.dy, s.tokens * out);
        weights.loadBackward(adapters);
        if (grads != null) {
            DeviceWeights.copyIn(grads.a(), p.gradA, p.gradA.getSize());
            DeviceWeights.copyIn(grads.b(), p.gradB, p.gradB.getSize());
        }
        p.backward();
        if (dx != null) {
            DeviceWeights.copyOut(p.dx, dx, s.tokens * in);
        }
        if (grads != null) {
            DeviceWeights.copyOut(p.gradA, grads.a(), p.gradA.getSize());
            DeviceWeights.copyOut(p.gradB, grads.b(), p.gradB.getSize());
        }
        lastProfile = p.profile();
    }

    private long runForward(LoraLayerPlan p, float[] x, float[] mask, int tokens, Adapters adapters) {
        int in = spec.inDim();
        p.sizes.set(Sizes.TOKENS, tokens);
        p.sizes.set(Sizes.MASK, mask != null ? 1 : 0);
        p.sizes.set(Sizes.ADAPTERS, adapters != null ? 1 : 0);
        DeviceWeights.copyIn(x, p.x, tokens * in);
        if (mask != null) {
            DeviceWeights.copyIn(mask, p.mask, tokens * in);
        }
        weights.loadForward(adapters);
        return p.forward();
    }

    /** The plan for a batch of {@code tokens}: the current one, or a larger one replacing it. */
    private LoraLayerPlan planFor(int tokens) {
        if (plan != null && tokens <= plan.capacity) {
            return plan;
        }
        int capacity = roundUp(Math.max(tokens, plan == null ? 0 : 2 * plan.capacity), Matmul.PANEL_ROWS);
        if (plan != null) {
            LoraLayerPlan old = plan;
            plan = null;
            old.close();  // frees its device buffers, the base's among them, before the new plan allocates
        }
        Nf4Variant variant = Nf4Variant.choose(options.nf4Variant(), capacity);
        plan = new LoraLayerPlan(weights, capacity, device, schedule, variant,
                new int[] {options.panelLocalX(), options.panelLocalY()}, profile);
        return plan;
    }

    private static int roundUp(int v, int multiple) {
        return (v + multiple - 1) / multiple * multiple;
    }

    @Override
    public synchronized void setProfiling(boolean on) {
        profile = on;
        if (plan != null) {
            plan.setProfiling(on);
        }
    }

    @Override
    public synchronized Profile lastProfile() {
        return profile ? lastProfile : null;
    }

    /**
     * Device memory of the current plan as TornadoVM's profiler counted its allocations (the base in its device
     * layout, the activation buffers for the capacity, the adapters); -1 when a first run went unprofiled.
     */
    @Override
    public synchronized long deviceBytes() {
        return plan == null ? 0 : plan.deviceBytes();
    }

    /** TornadoVM's per-task profile log (JSON) of the last call, or null when profiling is off. */
    public synchronized String lastProfileLog() {
        return plan == null ? null : plan.profileLog();
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (plan != null) {
            LoraLayerPlan p = plan;
            plan = null;
            p.close();
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this layer binding was closed");
        }
    }

    @Override
    public String toString() {
        return "TornadoLayer(" + spec.outDim() + "x" + spec.inDim() + ", rank " + spec.rank() + ", capacity "
                + capacity() + ", " + schedule + ")";
    }
}
