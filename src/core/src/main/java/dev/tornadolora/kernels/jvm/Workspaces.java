package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;

import java.util.concurrent.ConcurrentLinkedDeque;

import static dev.tornadolora.kernels.jvm.Gemm.KB;
import static dev.tornadolora.kernels.jvm.Gemm.MR;
import static dev.tornadolora.kernels.jvm.Gemm.NRL;

/**
 * The scratch memory of the Vector API backend's kernels, owned by the backend (one per {@code Device}) and passed
 * down to {@link Gemm}, {@link Panels} and {@link Gemv}: a {@link Workspace} per worker that runs a chunk of a
 * {@link #range} (checked out for the chunk, returned after it, so there are as many as chunks ever ran at once:
 * the executor's threads, times the callers running kernels at the same time), and the packed left operand of a
 * GEMM, one per GEMM in flight, kept at the largest size asked for. Nothing is shared between two devices, and
 * closing a backend drops it all.
 */
final class Workspaces {
    private final Parallel par;
    /** Last in, first out: the workspace a chunk gets is the one a chunk gave back last, still in cache. */
    private final ConcurrentLinkedDeque<Workspace> free = new ConcurrentLinkedDeque<>();
    private final ConcurrentLinkedDeque<float[]> packedBuffers = new ConcurrentLinkedDeque<>();

    Workspaces(Parallel par) {
        this.par = par;
    }

    /** The executor the kernels run on. */
    Parallel par() {
        return par;
    }

    /** One worker's scratch: a B panel and a C tile of {@link Gemm}, rows decoded by {@link Panels} and {@link Gemv}. */
    static final class Workspace {
        /** A B panel, {@link Gemm#KB} × {@link Gemm#NRL}, filled per K block. */
        float[] panel = new float[KB * NRL];
        /** The next B panel, copied while the micro-kernel runs on {@link #panel} (see {@link Gemm.Right#rowMajor}). */
        float[] nextPanel = new float[KB * NRL];

        /** The next panel becomes the current one. */
        void swapPanels() {
            float[] p = panel;
            panel = nextPanel;
            nextPanel = p;
        }
        /** An MR × NRL tile of C on its way out of registers (ragged edges, a multiplier). */
        final float[] tile = new float[MR * NRL];
        /** The NRL row pieces of a coded W that {@link Panels#decodedTransposed} reads back column by column. */
        final float[] rowPieces = new float[NRL * KB];
        private float[] row = new float[0];
        private float[] group;

        /** {@link Gemm#PANEL_GROUP} B panels, filled together by {@link Gemm.Right#fillGroup} (made on first use). */
        float[] group() {
            if (group == null) {
                group = new float[Gemm.PANEL_GROUP * KB * NRL];
            }
            return group;
        }

        /** A row buffer of at least n floats (a decoded row of W). */
        float[] row(int n) {
            if (row.length < n) {
                row = new float[n];
            }
            return row;
        }
    }

    /** A body over {@code [from, to)} with the scratch of the worker that runs it. */
    @FunctionalInterface
    interface Body {
        void run(int from, int to, Workspace w);
    }

    /** {@link Parallel#range} with a workspace per chunk. */
    void range(int n, int grain, Body body) {
        par.range(n, grain, (from, to) -> {
            Workspace w = take();
            try {
                body.run(from, to, w);
            } finally {
                free.push(w);
            }
        });
    }

    /** A workspace for work on the calling thread outside a {@link #range}; give it back with {@link #give}. */
    Workspace take() {
        Workspace w = free.poll();  // the head: the last pushed
        return w == null ? new Workspace() : w;
    }

    void give(Workspace w) {
        free.push(w);
    }

    /** A buffer of at least n floats for a packed left operand; give it back with {@link #givePacked}. */
    float[] takePacked(int n) {
        float[] p = packedBuffers.poll();
        return p == null || p.length < n ? new float[n] : p;
    }

    void givePacked(float[] p) {
        packedBuffers.push(p);
    }
}
