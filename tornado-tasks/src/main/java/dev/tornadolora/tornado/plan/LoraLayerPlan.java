package dev.tornadolora.tornado.plan;

import dev.tornadolora.tornado.kernels.AdapterKernels;
import dev.tornadolora.tornado.kernels.Matmul;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
import dev.tornadolora.kernels.ProfilingKernels;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One execution plan for one layer at one batch shape: a forward and a backward task graph over the same
 * device-resident base. Scalars (sizes, alpha/rank, flags) are compile-time constants to TornadoVM, so a plan is
 * specialised to its token count, dropout and adapter switches; {@code TornadoLoraKernels} keeps one per shape.
 *
 * <pre>
 *   forward  (graph 0)  base weights in once ── [dequantize → W scratch] ── matmul y = x·Wᵀ ── h = (x⊙m)·Aᵀ
 *                                           └── epilogue y += s·h·Bᵀ + b ──→ y, h
 *                       (CPU schedule: h first, then the matmul with the epilogue in its registers)
 *   backward (graph 1)  base consumed from graph 0 ── dx = dy·W ── dB, dh, dA ── dx += (dh·A)⊙m ──→ dx, dA, dB
 * </pre>
 * Per call only activations go in (x, mask, dy, and the adapters when the host changed them) and only y, h, dx
 * and the gradients come back.
 */
public final class LoraLayerPlan implements AutoCloseable {
    private static final AtomicLong IDS = new AtomicLong();

    final DeviceWeights weights;
    final int tokens;
    final boolean useMask;
    final boolean adapters;
    final Schedule schedule;
    final Nf4Variant variant;

    final FloatArray x;
    final FloatArray mask;
    final FloatArray h;
    final FloatArray y;
    final FloatArray dy;
    final FloatArray dx;
    final FloatArray dh;
    final FloatArray gradA;
    final FloatArray gradB;
    private final TornadoExecutionPlan plan;
    private boolean profile;
    private TornadoExecutionResult lastResult;
    private boolean forwardRan;

    LoraLayerPlan(DeviceWeights dw, int tokens, boolean useMask, boolean adapters, TornadoDevice device,
                  Schedule schedule, Nf4Variant variant, boolean profile) {
        this.weights = dw;
        this.tokens = tokens;
        this.useMask = useMask;
        this.adapters = adapters;
        this.schedule = schedule;
        this.variant = dw.nf4 ? variant : null;
        this.profile = profile;
        int in = dw.in, out = dw.out, r = dw.rank;
        x = new FloatArray(tokens * in);
        mask = new FloatArray(useMask ? tokens * in : 1);
        h = new FloatArray(tokens * r);
        y = new FloatArray(tokens * out);
        dy = new FloatArray(tokens * out);
        dx = new FloatArray(tokens * in);
        dh = new FloatArray(tokens * r);
        gradA = new FloatArray(r * in);
        gradB = new FloatArray(out * r);
        long id = IDS.incrementAndGet();
        String fwdName = "loraForward" + id, bwdName = "loraBackward" + id;
        int m = useMask ? 1 : 0, bias = dw.hasBias ? 1 : 0, on = adapters ? 1 : 0;
        GridScheduler grids = new GridScheduler();
        var forward = BaseMatmul.Direction.FORWARD;
        var backward = BaseMatmul.Direction.BACKWARD;

        // The frozen arrays both graphs read move once, with the forward graph; backward consumes its buffers.
        List<Object> fwdReads = BaseMatmul.reads(dw, schedule, variant, forward);
        List<Object> bwdReads = BaseMatmul.reads(dw, schedule, variant, backward);
        Object[] shared = fwdReads.stream().filter(bwdReads::contains).toArray();
        Object[] bwdOwn = bwdReads.stream().filter(o -> !fwdReads.contains(o)).toArray();

        Object fwdScratch = BaseMatmul.scratch(dw, schedule, variant, forward);
        Object bwdScratch = BaseMatmul.scratch(dw, schedule, variant, backward);
        boolean fused = BaseMatmul.fusesEpilogue(dw, schedule, variant);
        TaskGraph fwd = new TaskGraph(fwdName)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, fwdReads.toArray())
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, dw.bias, dw.biasPanels, dw.noFloats, dw.noPanels,
                        dw.noBiasPanels)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, x, mask, dw.a, dw.b, dw.aPanels, dw.scaledBPanels);
        if (fwdScratch != null) {
            fwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, fwdScratch); // allocates it; tasks fill it
        }
        if (fused) {
            // h = (x⊙m)·Aᵀ as a small panel matmul, then the base product with y += s·h·Bᵀ + b in its registers.
            FloatArray xd = x;
            if (useMask) {
                xd = new FloatArray(tokens * in);
                fwd.task("dropout", AdapterKernels::dropout, x, mask, xd, tokens * in);
            }
            fwd.task("down", Matmul::panels, xd, dw.aPanels, dw.noFloats, dw.noPanels, dw.noBiasPanels, h,
                    Schedule.ceilDiv(r, Matmul.PANEL), Schedule.ceilDiv(tokens, Matmul.PANEL_ROWS), tokens, r, in, 0, 0, 0);
            grids.addWorkerGrid(fwdName + ".down", Schedule.panelGrid(tokens, r));
            BaseMatmul.add(fwd, fwdName, grids, "base", dw, schedule, variant, forward, fwdScratch, x, y, tokens, h, adapters);
        } else {
            BaseMatmul.add(fwd, fwdName, grids, "base", dw, schedule, variant, forward, fwdScratch, x, y, tokens, null, false);
            fwd.task("down", AdapterKernels::down, x, mask, dw.a, h, r, tokens, in, m)
               .task("epilogue", AdapterKernels::epilogue, y, h, dw.b, dw.bias, out, tokens, r, dw.scale, bias, on);
        }
        fwd.transferToHost(DataTransferMode.EVERY_EXECUTION, y, h);
        if (shared.length > 0) {
            fwd.persistOnDevice(shared);
        }

        TaskGraph bwd = new TaskGraph(bwdName);
        if (shared.length > 0) {
            bwd.consumeFromDevice(fwdName, shared);
        }
        if (bwdOwn.length > 0) {
            bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, bwdOwn);
        }
        if (bwdScratch != null) {
            bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, bwdScratch);
        }
        bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, dw.noFloats, dw.noPanels, dw.noBiasPanels);
        bwd.transferToDevice(DataTransferMode.EVERY_EXECUTION, x, mask, h, dy, dw.a, dw.b, gradA, gradB);
        BaseMatmul.add(bwd, bwdName, grids, "baseGrad", dw, schedule, variant, backward, bwdScratch, dy, dx, tokens,
                null, false);
        if (adapters) {
            bwd.task("gradB", AdapterKernels::gradB, dy, h, gradB, r, out, tokens, dw.scale, 1)
               .task("gradH", AdapterKernels::gradH, dy, dw.b, dh, r, tokens, out, dw.scale)
               .task("gradA", AdapterKernels::gradA, dh, x, mask, gradA, in, r, tokens, m, 1)
               .task("dxLora", AdapterKernels::dxLora, dx, dh, dw.a, mask, in, tokens, r, m);
        }
        bwd.transferToHost(DataTransferMode.EVERY_EXECUTION, dx, gradA, gradB);

        plan = new TornadoExecutionPlan(fwd.snapshot(), bwd.snapshot());
        try {
            plan.withDevice(device).withGridScheduler(grids);
            if (profile) {
                plan.withProfiler(ProfilerMode.SILENT);
            }
        } catch (RuntimeException e) {
            Closing.close(plan);
            throw e;
        }
    }

    /** Runs the forward graph on the inputs already copied into {@link #x} and {@link #mask}. */
    void forward() {
        lastResult = plan.withGraph(0).execute();
        forwardRan = true;
    }

    boolean forwardRan() {
        return forwardRan;
    }

    /** Runs the backward graph; {@link #forward} must have run once (it puts the base on the device). */
    void backward() {
        lastResult = plan.withGraph(1).execute();
    }

    void setProfiling(boolean on) {
        profile = on;
        if (on) {
            plan.withProfiler(ProfilerMode.SILENT);
        } else {
            plan.withoutProfiler();
        }
    }

    /** TornadoVM's per-task profile log (JSON) of the last run, or null when profiling is off. */
    String profileLog() {
        return profile && lastResult != null ? lastResult.getProfilerResult().getProfileLog() : null;
    }

    /** The profile of the last run in milliseconds, or null when profiling is off. */
    ProfilingKernels.Profile profile() {
        if (!profile || lastResult == null) {
            return null;
        }
        TornadoProfilerResult r = lastResult.getProfilerResult();
        return new ProfilingKernels.Profile(r.getTotalTime() / 1e6, r.getCompileTime() / 1e6,
                r.getDeviceKernelTime() / 1e6, r.getDataTransfersTime() / 1e6);
    }

    @Override
    public void close() {
        Closing.close(plan);
    }
}
