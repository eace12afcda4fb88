package dev.tornadolora.tornado.plan;

import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.Nf4Decode;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.List;

/**
 * Adds the base product of a layer to a task graph, choosing the kernels from the schedule, the base's storage
 * and the NF4 variant: {@code c = a · Wᵀ} (forward, {@code a = x}) or {@code c = a · W} (backward, {@code a = dy}).
 * {@link #reads} names the frozen device arrays those tasks read, so that a plan can send each once.
 */
final class BaseMatmul {
    /** The direction of the product. */
    enum Direction {
        FORWARD(1), BACKWARD(0);

        final int bTransposed;

        Direction(int bTransposed) {
            this.bTransposed = bTransposed;
        }
    }

    private BaseMatmul() {}

    /** The frozen arrays that {@link #add} reads for this direction (declare them before adding the tasks). */
    static List<Object> reads(DeviceWeights w, Schedule schedule, Nf4Variant variant, Direction dir) {
        if (w.nf4 && variant == Nf4Variant.DEQUANTIZE_TASK) {
            return List.of(w.codes, w.scales, w.codebook);
        }
        if (!w.nf4 && schedule == Schedule.CPU_PANELS) {
            return List.of(w.forwardPanels);  // both directions: the backward reads them as W
        }
        return List.of(w.w, w.codes, w.scales, w.codebook); // placeholders included: they are kernel arguments
    }

    /**
     * Whether the backward product reads the forward's panels ({@link Matmul#panelsTransposed}): the CPU schedule
     * over an fp32 base, or over the NF4 base's dequantized scratch, which the backward then consumes from the
     * forward instead of decoding its own.
     */
    static boolean backwardReadsForwardPanels(DeviceWeights w, Schedule schedule, Nf4Variant variant) {
        return schedule == Schedule.CPU_PANELS && (!w.nf4 || variant == Nf4Variant.DEQUANTIZE_TASK);
    }

    /** Whether {@link #add} can fuse the LoRA epilogue (y += s·h·Bᵀ + bias) into the forward product. */
    static boolean fusesEpilogue(DeviceWeights w, Schedule schedule, Nf4Variant variant) {
        return schedule == Schedule.CPU_PANELS && (!w.nf4 || variant == Nf4Variant.DEQUANTIZE_TASK);
    }

    /**
     * Adds the tasks computing c [m, n] from a [m, k], m = {@code sizes[TOKENS]} ≤ {@code capacity}.
     * {@code scratch} is the fp32 buffer of the dequantize-task variant (a VectorFloat16 on CPUs, a FloatArray on
     * GPUs; see {@link #scratch}), else null. With {@code h != null} (forward, {@link #fusesEpilogue}) the product
     * also adds s·h·Bᵀ (when the adapters are on at run time) and the bias.
     */
    static void add(TaskGraph g, String graphName, GridScheduler grids, String task, DeviceWeights w,
                    Schedule schedule, Nf4Variant variant, Direction dir, Object scratch, FloatArray a,
                    FloatArray c, IntArray sizes, int capacity, FloatArray h, int[] panelLocal, VectorFloat16 aPanels) {
        int m = capacity;
        int n = dir == Direction.FORWARD ? w.out : w.in;
        int k = dir == Direction.FORWARD ? w.in : w.out;
        if (dir == Direction.BACKWARD && backwardReadsForwardPanels(w, schedule, variant)) {
            VectorFloat16 panels = w.nf4 ? (VectorFloat16) scratch : w.forwardPanels;
            g.task(task, Matmul::panelsTransposed, aPanels, panels, c, sizes, n, Schedule.ceilDiv(m, Matmul.PANEL_ROWS),
                    n, Schedule.ceilDiv(k, Matmul.PANEL));
            grids.addWorkerGrid(graphName + "." + task, Schedule.columnGrid(m, n, panelLocal[0], panelLocal[1]));
            return;
        }
        int bT = dir.bTransposed;
        boolean dequantizeTask = w.nf4 && variant == Nf4Variant.DEQUANTIZE_TASK;
        if (schedule == Schedule.GPU_TILED) {
            FloatArray weights = w.w;
            if (dequantizeTask) {
                g.task(task + "Dequantize", Nf4Decode::dequantize, w.codes, w.scales, w.codebook, (FloatArray) scratch,
                        w.out * w.in / 2, w.log2BlockSize);
                weights = (FloatArray) scratch;
            }
            int nf4 = w.nf4 && !dequantizeTask ? 1 : 0;
            g.task(task, Matmul::tiled, new KernelContext(), a, weights, w.codes, w.scales, w.codebook, c, sizes, n, k,
                    Schedule.ceilDiv(k, Matmul.TILE), bT, nf4, w.log2BlockSize);
            grids.addWorkerGrid(graphName + "." + task, Schedule.tiledGrid(m, n));
        } else if (!w.nf4 || dequantizeTask) {
            VectorFloat16 panels = w.nf4 ? (VectorFloat16) scratch : w.forwardPanels;  // forward (backward returned above)
            if (dequantizeTask) {
                g.task(task + "Dequantize", Nf4Decode::dequantizePanels, w.codes, w.scales, w.codebook, panels,
                        k, Schedule.ceilDiv(n, Matmul.PANEL), n, bT, w.log2BlockSize);
            }
            boolean epilogue = h != null;
            g.task(task, Matmul::panels, a, panels, epilogue ? h : w.noFloats, epilogue ? w.scaledBPanels : w.noPanels,
                    epilogue ? w.biasPanels : w.noBiasPanels, c, sizes, Schedule.ceilDiv(n, Matmul.PANEL),
                    Schedule.ceilDiv(m, Matmul.PANEL_ROWS), n, k, w.kernelRank, epilogue && w.rank > 0 ? 1 : 0,
                    epilogue && w.hasBias ? 1 : 0, 0, 0);
            grids.addWorkerGrid(graphName + "." + task, Schedule.panelGrid(m, n, panelLocal[0], panelLocal[1]));
        } else {
            g.task(task, Matmul::blocked, a, w.w, w.codes, w.scales, w.codebook, c, sizes,
                    Schedule.ceilDiv(n, Matmul.BLOCK_N), Schedule.ceilDiv(m, Matmul.BLOCK_M), n, k, bT, 1, w.log2BlockSize);
            grids.addWorkerGrid(graphName + "." + task, Schedule.blockedGrid(m, n));
        }
    }

    /** The scratch buffer of the dequantize-task variant for a direction, or null when none is needed. */
    static Object scratch(DeviceWeights w, Schedule schedule, Nf4Variant variant, Direction dir) {
        if (!w.nf4 || variant != Nf4Variant.DEQUANTIZE_TASK
                || dir == Direction.BACKWARD && backwardReadsForwardPanels(w, schedule, variant)) {
            return null;
        }
        if (schedule == Schedule.GPU_TILED) {
            return new FloatArray(w.out * w.in);
        }
        int n = dir == Direction.FORWARD ? w.out : w.in;
        int k = dir == Direction.FORWARD ? w.in : w.out;
        return new VectorFloat16(Schedule.ceilDiv(n, Matmul.PANEL) * k);
    }
}
