package dev.tornadolora.tornado.plan;

import dev.tornadolora.tornado.kernels.AdapterKernels;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.Nf4Decode;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.util.concurrent.atomic.AtomicLong;

/**
 * One execution plan for one layer at one batch shape: a forward and a backward task graph over the same
 * device-resident base. Scalars (sizes, alpha/rank, flags) are compile-time constants to TornadoVM, so a plan is
 * specialised to its token count, dropout and adapter switches; {@code TornadoLoraKernels} keeps one per shape.
 *
 * <pre>
 *   forward  (graph 0)  base weights in once ── [dequantize → W scratch] ── matmul y = x·Wᵀ ── h = (x⊙m)·Aᵀ
 *                                           └── epilogue y += s·h·Bᵀ + b ──→ y, h
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
    private final FloatArray scratch;
    private final TornadoExecutionPlan plan;
    private final boolean profile;
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
        boolean dequantizeTask = dw.nf4 && variant == Nf4Variant.DEQUANTIZE_TASK;
        scratch = dequantizeTask ? new FloatArray(out * in) : null;

        long id = IDS.incrementAndGet();
        String fwdName = "loraForward" + id, bwdName = "loraBackward" + id;
        int m = useMask ? 1 : 0, bias = dw.hasBias ? 1 : 0, on = adapters ? 1 : 0;
        GridScheduler grids = new GridScheduler();

        // The base arrays that the backward graph reads straight from the forward graph's device buffers; with
        // the dequantize task the forward graph never touches the fp32 placeholder, so backward sends its own.
        Object[] shared = dequantizeTask ? new Object[] {dw.codes, dw.scales, dw.codebook}
                : new Object[] {dw.w, dw.codes, dw.scales, dw.codebook};
        TaskGraph fwd = new TaskGraph(fwdName)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, shared)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, dw.bias)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, x, mask, dw.a, dw.b);
        if (dequantizeTask) {
            fwd.task("dequantize", Nf4Decode::dequantize, dw.codes, dw.scales, dw.codebook, scratch, out * in / 2,
                    dw.log2BlockSize);
            addMatmul(fwd, fwdName, grids, "base", x, scratch, false, y, tokens, out, in, 1);
        } else {
            addMatmul(fwd, fwdName, grids, "base", x, dw.w, dw.nf4, y, tokens, out, in, 1);
        }
        fwd.task("down", AdapterKernels::down, x, mask, dw.a, h, r, tokens, in, m)
           .task("epilogue", AdapterKernels::epilogue, y, h, dw.b, dw.bias, out, tokens, r, dw.scale, bias, on)
           .transferToHost(DataTransferMode.EVERY_EXECUTION, y, h)
           .persistOnDevice(shared);

        TaskGraph bwd = new TaskGraph(bwdName)
                .consumeFromDevice(fwdName, shared)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, x, mask, h, dy, dw.a, dw.b, gradA, gradB);
        if (dequantizeTask) {
            bwd.transferToDevice(DataTransferMode.FIRST_EXECUTION, dw.w);
        }
        addMatmul(bwd, bwdName, grids, "baseGrad", dy, dw.w, dw.nf4, dx, tokens, in, out, 0);
        if (adapters) {
            bwd.task("gradB", AdapterKernels::gradB, dy, h, gradB, r, out, tokens, dw.scale, 1)
               .task("gradH", AdapterKernels::gradH, dy, dw.b, dh, r, tokens, out, dw.scale)
               .task("gradA", AdapterKernels::gradA, dh, x, mask, gradA, in, r, tokens, m, 1)
               .task("dxLora", AdapterKernels::dxLora, dx, dh, dw.a, mask, in, tokens, r, m);
        }
        bwd.transferToHost(DataTransferMode.EVERY_EXECUTION, dx, gradA, gradB);

        plan = new TornadoExecutionPlan(fwd.snapshot(), bwd.snapshot());
        plan.withDevice(device).withGridScheduler(grids);
        if (profile) {
            plan.withProfiler(ProfilerMode.SILENT);
        }
    }

    /** Adds c = a · B (B from W, transposed when {@code bTransposed = 1}) with the plan's schedule. */
    private void addMatmul(TaskGraph g, String graphName, GridScheduler grids, String task, FloatArray a, FloatArray w,
                           boolean nf4, FloatArray c, int m, int n, int k, int bTransposed) {
        DeviceWeights dw = weights;
        int q = nf4 ? 1 : 0;
        if (schedule == Schedule.GPU_TILED) {
            g.task(task, Matmul::tiled, new KernelContext(), a, w, dw.codes, dw.scales, dw.codebook, c, m, n, k,
                    Schedule.ceilDiv(k, Matmul.TILE), bTransposed, q, dw.log2BlockSize);
        } else {
            g.task(task, Matmul::blocked, a, w, dw.codes, dw.scales, dw.codebook, c,
                    Schedule.ceilDiv(n, Matmul.BLOCK_N), Schedule.ceilDiv(m, Matmul.BLOCK_M), m, n, k, bTransposed, q,
                    dw.log2BlockSize);
        }
        grids.addWorkerGrid(graphName + "." + task, schedule.grid(m, n));
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

    /** The profile of the last run (kernel and transfer times), or null when profiling is off. */
    public TornadoExecutionResult lastResult() {
        return profile ? lastResult : null;
    }

    @Override
    public void close() {
        try {
            plan.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing a TornadoVM execution plan failed: " + e.getMessage(), e);
        }
    }
}
