package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The embedding lookup and the plan's buffer copies on the device. The gather's JVM twin is the row copy of
 * {@code LlamaForCausalLM.forward} ({@code x[t] = embed_tokens[ids[t]]}). The embedding is frozen: it has no
 * backward. (The residual adds live in {@link RmsNormKernels}, fused into the norm that reads the sum.)
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
