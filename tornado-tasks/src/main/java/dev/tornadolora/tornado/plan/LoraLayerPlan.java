package dev.tornadolora.tornado.plan;

import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.tornado.kernels.AdapterKernels;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.Sizes;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one execution plan of a bound layer, for batches of up to {@code capacity} tokens: a forward and a backward
 * task graph over the same device-resident base. The batch's token count and switches travel in the device array
 * {@link #sizes} ({@link Sizes}), so one compiled plan serves every batch up to its capacity.
 *
 * <pre>
 *   forward  (graph 0)  base in once ── [dequantize → W scratch] ── matmul y = x·Wᵀ ── h = (x⊙m)·Aᵀ
 *                                   └── epilogue y += s·h·Bᵀ + b ──→ y
 *                       (CPU schedule: h first, then the matmul with the epilogue in its registers)
 *   backward (graph 1)  base, x, m, h and sizes consumed from graph 0 ── dx = dy·W ── dB, dh, dA
 *                       ── dx += (dh·A)⊙m ──→ dx, dA, dB
 * </pre>
 * Per call only x, the mask and the adapters go in for the forward (y comes back), and dy, the adapters and the
 * gradients for the backward (dx and the gradients come back): x, m and h stay on the device in between.
 *
 * <p>What it still serves, where the whole-model {@link LlamaDevicePlan} does not ({@code PlanDeviceStep},
 * {@code PlanDeviceForward} decide): LoRA dropout (the mask m), DoRA and per-module rank/alpha patterns, an adapter
 * on lm_head, the families' biases and q/k norms, rows of packed examples (position ids restarting, attention kept
 * apart), evaluation rows of another length, a model with no adapter on its layers (forward of the base alone),
 * generation with a KV cache, the Spark replicas' steps, and the JVM layers' batches of any size (one plan per
 * capacity, not per shape).
 */
final class LoraLayerPlan implements AutoCloseable {
    private static final AtomicLong IDS = new AtomicLong();

    final DeviceWeights weights;
    final int capacity;
    final Nf4Variant variant;

    final IntArray sizes = new IntArray(Sizes.LENGTH);
    final FloatArray x;
    final FloatArray mask;
    final FloatArray h;
    final FloatArray y;
    final FloatArray dy;
    /** dy as row panels, for the CPU schedule's backward product over the forward panels (else a placeholder). */
    final VectorFloat16 dyPanels;
    final FloatArray dx;
    final FloatArray dh;
    final FloatArray gradA;
    final FloatArray gradB;
    private final TornadoExecutionPlan plan;
    private boolean profile;
    private TornadoExecutionResult lastResult;
    private boolean forwardRan;
    /** Counts forward runs: activations name the run whose x, m and h the device holds. */
    private long generation;

    LoraLayerPlan(DeviceWeights dw, int capacity, TornadoDevice device, Schedule schedule, Nf4Variant variant,
                  int[] panelLocal, boolean profile) {
        this.weights = dw;
        this.capacity = capacity;
        this.variant = dw.nf4 ? variant : null;
        this.profile = profile;
        int in = dw.in, out = dw.out, r = dw.kernelRank;
        x = new FloatArray(capacity * in);
        mask = new FloatArray(capacity * in);
        h = new FloatArray(capacity * r);
        y = new FloatArray(capacity * out);
        dy = new FloatArray(capacity * out);
        boolean panelBackward = BaseMatmul.backwardReadsForwardPanels(dw, schedule, this.variant);
        dyPanels = panelBackward ? new VectorFloat16(capacity * Schedule.ceilDiv(out, Matmul.PANEL)) : new VectorFloat16(1);
        dx = new FloatArray(capacity * in);
        dh = new FloatArray(capacity * r);
        gradA = new FloatArray(r * in);
        gradB = new FloatArray(out * r);
        long id = IDS.incrementAndGet();
        String fwdName = "loraForward" + id, bwdName = "loraBackward" + id;
        int bias = dw.hasBias ? 1 : 0;
        GridScheduler grids = new GridScheduler();
        int tokenBlocks = AdapterKernels.blocks(capacity, AdapterKernels.BLOCK);
        int rankPanels = AdapterKernels.blocks(r, AdapterKernels.LANES);
        var forward = BaseMatmul.Direction.FORWARD;
        var backward = BaseMatmul.Direction.BACKWARD;

        // The frozen arrays both graphs read move once, with the forward graph; backward consumes its buffers.
        List<Object> fwdReads = BaseMatmul.reads(dw, schedule, this.variant, forward);
        List<Object> bwdReads = BaseMatmul.reads(dw, schedule, this.variant, backward);
        List<Object> shared = new ArrayList<>(fwdReads.stream().filter(bwdReads::contains).toList());
        Object[] bwdOwn = bwdReads.stream().filter(o -> !fwdReads.contains(o)).toArray();
        // ... and so do the activations backward needs: they stay on the device from forward to backward.
        shared.addAll(List.of(sizes, x, mask, h, dw.noFloats, dw.noPanels, dw.noBiasPanels));

        Object fwdScratch = BaseMatmul.scratch(dw, schedule, this.variant, forward);
        Object bwdScratch = BaseMatmul.scratch(dw, schedule, this.variant, backward);
        if (panelBackward && fwdScratch != null) {
            shared.add(fwdScratch);  // the dequantized panels: the backward reads them too
        }
        boolean fused = BaseMatmul.fusesEpilogue(dw, schedule, this.variant);
        TaskGraph fwd = new TaskGraph(fwdName)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, fwdReads.toArray())
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, dw.bias, dw.biasPanels, dw.noFloats, dw.noPanels,
                        dw.noBiasPanels, h)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, sizes, x, mask, dw.a, dw.b, dw.aPanels,
                        dw.scaledBPanels);
        if (fwdScratch != null) {
            fwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, fwdScratch); // allocates it; tasks fill it
        }
        if (fused) {
            // h = (x⊙m)·Aᵀ as a small panel matmul, then the base product with y += s·h·Bᵀ + b in its registers.
            FloatArray xd = new FloatArray(capacity * in);
            fwd.task("dropout", AdapterKernels::dropout, x, mask, xd, sizes, capacity, in);
            fwd.task("down", Matmul::panels, xd, dw.aPanels, dw.noFloats, dw.noPanels, dw.noBiasPanels, h, sizes,
                    Schedule.ceilDiv(r, Matmul.PANEL), Schedule.ceilDiv(capacity, Matmul.PANEL_ROWS), r, in, 0, 0, 0, 0, 0);
            grids.addWorkerGrid(fwdName + ".down", Schedule.panelGrid(capacity, r, panelLocal[0], panelLocal[1]));
            BaseMatmul.add(fwd, fwdName, grids, "base", dw, schedule, this.variant, forward, fwdScratch, x, y, sizes,
                    capacity, h, panelLocal, null);
        } else {
            BaseMatmul.add(fwd, fwdName, grids, "base", dw, schedule, this.variant, forward, fwdScratch, x, y, sizes,
                    capacity, null, panelLocal, null);
            fwd.task("down", AdapterKernels::down, x, mask, dw.a, h, sizes, tokenBlocks, rankPanels, r, in, 0)
               .task("epilogue", AdapterKernels::epilogue, y, h, dw.b, dw.bias, sizes,
                       AdapterKernels.blocks(out, AdapterKernels.LANES), tokenBlocks, out, r, dw.scale, bias, 0, 1, r);
        }
        fwd.transferToHost(DataTransferMode.EVERY_EXECUTION, y);
        fwd.persistOnDevice(shared.toArray());

        TaskGraph bwd = new TaskGraph(bwdName).consumeFromDevice(fwdName, shared.toArray());
        if (bwdOwn.length > 0) {
            bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, bwdOwn);
        }
        if (bwdScratch != null) {
            bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, bwdScratch);
        }
        bwd.transferToDevice(DataTransferMode.EVERY_EXECUTION, dy, dyPanels, dw.backwardA, dw.backwardB, gradA, gradB);
        BaseMatmul.add(bwd, bwdName, grids, "baseGrad", dw, schedule, this.variant, backward,
                panelBackward ? fwdScratch : bwdScratch, dy, dx, sizes, capacity, null, panelLocal, dyPanels);
        if (dw.rank > 0) {
            bwd.task("gradB", AdapterKernels::gradB, dy, h, gradB, sizes,
                       AdapterKernels.blocks(out, AdapterKernels.BLOCK), rankPanels, r, out, dw.scale, 0)
               .task("gradH", AdapterKernels::gradH, dy, dw.backwardB, dh, sizes, tokenBlocks, rankPanels, r, out,
                       dw.scale, 0)
               .task("gradA", AdapterKernels::gradA, dh, x, mask, gradA, sizes,
                       AdapterKernels.blocks(in, AdapterKernels.BLOCK), rankPanels, r, in, 0)
               .task("dxLora", AdapterKernels::dxLora, dx, dh, dw.backwardA, mask, sizes, in, capacity, r, 0);
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

    /** Runs the forward graph on the inputs already copied into {@link #sizes}, {@link #x} and {@link #mask}. */
    long forward() {
        lastResult = plan.withGraph(0).execute();
        countAllocations(0);
        forwardRan = true;
        return ++generation;
    }

    /** Whether the device holds the activations of forward run {@code g}. */
    boolean holds(long g) {
        return forwardRan && g == generation;
    }

    /** Runs the backward graph on the activations of the last forward. */
    void backward() {
        lastResult = plan.withGraph(1).execute();
        countAllocations(1);
    }

    void setProfiling(boolean on) {
        profile = on;
        if (on) {
            plan.withProfiler(ProfilerMode.SILENT);
        } else {
            plan.withoutProfiler();
        }
    }

    /** Each graph's device buffers in bytes as TornadoVM's profiler reported them on its last profiled run. */
    private final long[] graphBytes = {-1, -1};

    /** Notes the device buffers the last run of {@code graph} holds (reported while the profiler is on). */
    private void countAllocations(int graph) {
        if (profile) {
            graphBytes[graph] = lastResult.getProfilerResult().getTotalDeviceMemoryUsage();
        }
    }

    /**
     * Device memory of the plan's buffers (base, activations, adapters), by TornadoVM's profiler over both graphs;
     * -1 until both ran with the profiler on.
     */
    long deviceBytes() {
        return graphBytes[0] < 0 || graphBytes[1] < 0 ? -1 : graphBytes[0] + graphBytes[1];
    }

    /** TornadoVM's per-task profile log (JSON) of the last run, or null when profiling is off. */
    String profileLog() {
        return profile && lastResult != null ? lastResult.getProfilerResult().getProfileLog() : null;
    }

    /** The profile of the last run in milliseconds, or null when profiling is off. */
    LayerKernels.Profiling.Profile profile() {
        if (!profile || lastResult == null) {
            return null;
        }
        TornadoProfilerResult r = lastResult.getProfilerResult();
        return new LayerKernels.Profiling.Profile(r.getTotalTime() / 1e6, r.getCompileTime() / 1e6,
                r.getDeviceKernelTime() / 1e6, r.getDataTransfersTime() / 1e6);
    }

    @Override
    public void close() {
        Closing.close(plan);
    }
}
