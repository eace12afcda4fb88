package dev.tornadolora.tornado.plan;

import dev.tornadolora.tornado.kernels.Matmul;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;

/**
 * How the base matmul is laid out on a device. CPUs (PoCL) want explicit vectors over W repacked into panels,
 * each work-item keeping a register block; GPUs want work-groups sharing tiles in local memory (which is 40×
 * slower on PoCL).
 */
public enum Schedule {
    /** {@link Matmul#panels} (and {@link Matmul#blocked} for fused NF4): register blocks, no local memory. */
    CPU_PANELS,
    /** {@link Matmul#tiled}: 16 × 16 local-memory tiles. */
    GPU_TILED;

    /** The schedule for a device type (TornadoOptions#schedule overrides it). */
    public static Schedule forDevice(TornadoDevice device) {
        return device.getDeviceType() == TornadoDeviceType.CPU ? CPU_PANELS : GPU_TILED;
    }

    /** The grid of {@link Matmul#tiled} for c [m, n]: one work-item per element, 16 × 16 work-groups. */
    static WorkerGrid tiledGrid(int m, int n) {
        WorkerGrid2D g = new WorkerGrid2D(roundUp(n, Matmul.TILE), roundUp(m, Matmul.TILE));
        g.setLocalWork(Matmul.TILE, Matmul.TILE, 1); // the kernel's tiles are exactly one work-group
        return g;
    }

    /** The grid of {@link Matmul#panels} for c [m, n]: panels × blocks of 8 rows, in lx × ly work-groups. */
    static WorkerGrid panelGrid(int m, int n, int lx, int ly) {
        return grid(ceilDiv(n, Matmul.PANEL), ceilDiv(m, Matmul.PANEL_ROWS), lx, ly);
    }

    /** The grid of {@link Matmul#blocked} for c [m, n]: blocks of 4 columns × pairs of rows, 8 × 32 work-groups. */
    static WorkerGrid blockedGrid(int m, int n) {
        return grid(ceilDiv(n, Matmul.BLOCK_N), ceilDiv(m, Matmul.BLOCK_M), 8, 32);
    }

    /** A 2-D grid of at least x × y work-items in work-groups of (up to) lx × ly; kernels clamp the padding. */
    private static WorkerGrid grid(int x, int y, int lx, int ly) {
        lx = Math.min(lx, x);
        ly = Math.min(ly, y);
        WorkerGrid2D g = new WorkerGrid2D(roundUp(x, lx), roundUp(y, ly));
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
