package dev.tornadolora.tornado.plan;

import dev.tornadolora.tornado.kernels.Matmul;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;

/**
 * How the base matmul is laid out on a device. CPUs (PoCL) want work-items that each keep a small register block
 * with k innermost; GPUs want work-groups that share tiles in local memory (which is 40× slower on PoCL).
 */
public enum Schedule {
    /** {@link Matmul#blocked}: 2 × 4 register blocks, local size {@code 8 × 32} (PoCL measurements). */
    CPU_BLOCKED,
    /** {@link Matmul#tiled}: 16 × 16 local-memory tiles. */
    GPU_TILED;

    /** The schedule for a device type: {@code -Dtornadolora.schedule=CPU_BLOCKED|GPU_TILED} overrides it. */
    public static Schedule forDevice(TornadoDevice device) {
        String forced = System.getProperty("tornadolora.schedule");
        if (forced != null) {
            return valueOf(forced);
        }
        return device.getDeviceType() == TornadoDeviceType.CPU ? CPU_BLOCKED : GPU_TILED;
    }

    /** The worker grid of the matmul c [m, n]. */
    WorkerGrid grid(int m, int n) {
        if (this == GPU_TILED) {
            WorkerGrid2D g = new WorkerGrid2D(roundUp(n, Matmul.TILE), roundUp(m, Matmul.TILE));
            g.setLocalWork(Matmul.TILE, Matmul.TILE, 1);
            return g;
        }
        int nBlocks = ceilDiv(n, Matmul.BLOCK_N), mBlocks = ceilDiv(m, Matmul.BLOCK_M);
        int lx = Math.min(8, nBlocks), ly = Math.min(32, mBlocks);
        WorkerGrid2D g = new WorkerGrid2D(roundUp(nBlocks, lx), roundUp(mBlocks, ly));
        g.setLocalWork(lx, ly, 1);
        return g;
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    static int roundUp(int a, int b) {
        return ceilDiv(a, b) * b;
    }
}
