package dev.tornadolora.tornado.plan;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

/**
 * The device plan's own plumbing kernels (no math: that is in {@code tornado.kernels} beside its JVM twins).
 * {@link #keep} is the task of a {@link LlamaDevicePlan}'s setup graph that names the buffers every graph shares
 * (TornadoVM allocates and uploads only the arrays a task names; the later graphs hand them on without naming
 * them): one task for up to {@link #ARITY} buffers rather than one per buffer, because every kernel launch costs
 * TornadoVM a 24-byte frame written to the device ({@link LlamaDevicePlan#FRAME_BYTES}), which its profiler counts
 * as bytes in.
 */
final class PlanKernels {
    private PlanKernels() {}

    /** Buffers one {@link #keep} names; fewer are padded with one-element placeholders, each its own array. */
    static final int ARITY = 8;

    /**
     * Reads element 0 of each array and writes the same values back only when their sum exceeds the largest float
     * (so the arrays are read-write, as a persisted buffer is, and no value ever changes).
     */
    static void keep(FloatArray a, FloatArray b, FloatArray c, FloatArray d, FloatArray e, FloatArray f,
                     FloatArray g, FloatArray h) {
        float va = a.get(0), vb = b.get(0), vc = c.get(0), vd = d.get(0);
        float ve = e.get(0), vf = f.get(0), vg = g.get(0), vh = h.get(0);
        if (va + vb + vc + vd + ve + vf + vg + vh > Float.MAX_VALUE) {
            a.set(0, va);
            b.set(0, vb);
            c.set(0, vc);
            d.set(0, vd);
            e.set(0, ve);
            f.set(0, vf);
            g.set(0, vg);
            h.set(0, vh);
        }
    }

    /** {@link #keep} for a panel buffer. */
    static void keepPanels(VectorFloat16 a) {
        Float16 v = a.get(0);
        if (v.getS0() > Float.MAX_VALUE) {
            a.set(0, v);
        }
    }

    /** A chunk's logits z [chunkRows, vocab] into rows chunk[0] … of the whole batch's logits (rows past tokens: none). */
    static void placeRows(FloatArray z, FloatArray logits, IntArray chunk, int vocab, int chunkRows, int tokens) {
        for (@Parallel int v = 0; v < vocab; v++) {
            for (@Parallel int c = 0; c < chunkRows; c++) {
                int t = chunk.get(0) + c;
                if (t < tokens) {
                    logits.set(t * vocab + v, z.get(c * vocab + v));
                }
            }
        }
    }
}
