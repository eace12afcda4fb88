package dev.tornadolora.tornado.kernels;

import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.math.Exp;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * lm_head and transformers' causal-LM loss on the device, a chunk of token rows at a time so that the logits of a
 * whole batch never exist at once; the math and its JVM twin are {@code dev.tornadolora.llama.ops.CausalLmLoss}:
 * <pre>
 *   z_t   = n_t · Wᵀ                                                      {@link #logits}
 *   ℓ_t   = logsumexp(z_t) − z_t[y_t]   (0 where y_t = −100)                {@link #rows}
 *   dz_t  = g · (softmax(z_t) − onehot(y_t)),   g = gradScale / N       (in place of z_t)
 *   dn_t  = dz_t · W                                                     {@link #inputGradients}
 * </pre>
 * y_t is the shifted target ({@code CausalLmLoss.target}: label t + 1 of the same sequence), made on the host with
 * the labels. The chunk's first row sits in the device array {@code chunk[0]}: {@link #advance} moves it on, so one
 * compiled graph runs every chunk ({@code scalars[0]} = g). Rows past {@code tokens} do nothing.
 */
public final class CausalLmLossKernels {
    private CausalLmLossKernels() {}

    /**
     * Element e of lm_head's W [vocab, hidden]: fp32 from {@code w} ({@code mantissaBits} 0), or BF16/F16 from
     * {@code halves}, decoded in the loop ({@link HalfDecode#element}); the unused arrays are placeholders.
     */
    public static float weight(FloatArray w, ShortArray halves, FloatArray powers, int e, int mantissaBits) {
        return mantissaBits == 0 ? w.get(e) : HalfDecode.element(halves, powers, e, mantissaBits);
    }

    /** z_c = n_t · Wᵀ for the chunk's rows (W as {@link #weight} reads it). */
    public static void logits(FloatArray n, FloatArray w, ShortArray halves, FloatArray powers, FloatArray z,
                              IntArray chunk, int vocab, int chunkRows, int hidden, int tokens, int mantissaBits) {
        for (@Parallel int v = 0; v < vocab; v++) {
            for (@Parallel int c = 0; c < chunkRows; c++) {
                int t = chunk.get(0) + c;
                if (t < tokens) {
                    float acc = 0f;
                    for (int k = 0; k < hidden; k++) {
                        acc += n.get(t * hidden + k) * weight(w, halves, powers, v * hidden + k, mantissaBits);
                    }
                    z.set(c * vocab + v, acc);
                }
            }
        }
    }

    /** ℓ_t into {@code rowLoss[t]}; with {@code withGrad = 1} the row of z becomes dz. */
    public static void rows(FloatArray z, IntArray targets, FloatArray scalars, FloatArray rowLoss, IntArray chunk,
                            int chunkRows, int vocab, int tokens, int withGrad) {
        for (@Parallel int c = 0; c < chunkRows; c++) {
            int t = chunk.get(0) + c;
            if (t < tokens) {
                int y = targets.get(t);
                int o = c * vocab;
                if (y == CrossEntropy.IGNORE_INDEX) {
                    rowLoss.set(t, 0f);
                    if (withGrad == 1) {
                        for (int i = 0; i < vocab; i++) {
                            z.set(o + i, 0f);
                        }
                    }
                } else {
                    float m = -Float.MAX_VALUE;
                    for (int i = 0; i < vocab; i++) {
                        m = TornadoMath.max(m, z.get(o + i));
                    }
                    float zy = z.get(o + y);
                    float sum = 0f;
                    for (int i = 0; i < vocab; i++) {
                        float e = Exp.exp(z.get(o + i) - m);
                        sum += e;
                        if (withGrad == 1) {
                            z.set(o + i, e);  // kept for dz: each exp once (the row's largest cost)
                        }
                    }
                    rowLoss.set(t, m + TornadoMath.log(sum) - zy);
                    if (withGrad == 1) {
                        float g = scalars.get(0);
                        float k = g / sum;
                        for (int i = 0; i < vocab; i++) {
                            z.set(o + i, z.get(o + i) * k);
                        }
                        z.set(o + y, z.get(o + y) - g);
                    }
                }
            }
        }
    }

    /** dn_t = dz_t · W, for the chunk's rows (W as {@link #weight} reads it). */
    public static void inputGradients(FloatArray dz, FloatArray w, ShortArray halves, FloatArray powers,
                                      FloatArray dn, IntArray chunk, int hidden, int chunkRows, int vocab, int tokens,
                                      int mantissaBits) {
        for (@Parallel int k = 0; k < hidden; k++) {
            for (@Parallel int c = 0; c < chunkRows; c++) {
                int t = chunk.get(0) + c;
                if (t < tokens) {
                    float acc = 0f;
                    for (int v = 0; v < vocab; v++) {
                        acc += dz.get(c * vocab + v) * weight(w, halves, powers, v * hidden + k, mantissaBits);
                    }
                    dn.set(t * hidden + k, acc);
                }
            }
        }
    }

    /** chunk[0] += chunkRows: the next execution of the graph works on the next chunk. */
    public static void advance(IntArray chunk, int chunkRows) {
        chunk.set(0, chunk.get(0) + chunkRows);
    }

    /**
     * chunk[0] = 0, before the first chunk of a step. The step's targets and gradient scale are read (and, never,
     * written) here so that the graph running this task brings them to the device and keeps them there: TornadoVM
     * allocates only the arrays a kernel uses.
     */
    public static void restart(IntArray chunk, IntArray targets, FloatArray scalars) {
        int t0 = targets.get(0);
        float g = scalars.get(0);
        if (g > Float.MAX_VALUE) {
            targets.set(0, t0);
            scalars.set(0, g);
        }
        chunk.set(0, 0);
    }

    /** total[0] = Σ_t ℓ_t (the host divides by N, in double, as the JVM twin does). */
    public static void total(FloatArray rowLoss, FloatArray total, int tokens) {
        float s = 0f;
        for (int t = 0; t < tokens; t++) {
            s += rowLoss.get(t);
        }
        total.set(0, s);
    }
}
