package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The embedding lookup and the residual stream's elementwise ops on the device. Their JVM twins are the row copy of
 * {@code LlamaForCausalLM.forward} ({@code x[t] = embed_tokens[ids[t]]}) and {@code DecoderLayer.addInPlace}.
 * The embedding is frozen: it has no backward.
 */
public final class EmbeddingKernels {
    private EmbeddingKernels() {}

    /** x[t, i] = table[ids[t], i]; dimension 0 runs along the row, so neighbouring work-items read neighbours. */
    public static void gather(IntArray ids, FloatArray table, FloatArray x, int tokens, int hidden) {
        for (@Parallel int i = 0; i < hidden; i++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                x.set(t * hidden + i, table.get(ids.get(t) * hidden + i));
            }
        }
    }

    /** a += b over the first n elements (a residual branch joining the stream). */
    public static void add(FloatArray a, FloatArray b, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(i, a.get(i) + b.get(i));
        }
    }

    /** dst = src over the first n elements (a residual stream forked: the branch's input kept, the sum made apart). */
    public static void copy(FloatArray src, FloatArray dst, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            dst.set(i, src.get(i));
        }
    }

    /**
     * Reads a[0] (and, never, writes it): a task that names an array, so that its graph holds the array on the
     * device and hands it on to the next graph (TornadoVM keeps only the arrays its tasks name).
     */
    public static void keep(FloatArray a) {
        float v = a.get(0);
        if (v > Float.MAX_VALUE) {
            a.set(0, v);
        }
    }
}
