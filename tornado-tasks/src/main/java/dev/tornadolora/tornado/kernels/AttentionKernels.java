package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import dev.tornadolora.math.Exp;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Causal grouped-query attention on the device, as transformers' eager Llama attention; the math and its JVM twin
 * are {@code dev.tornadolora.llama.ops.CausalAttention}. For sequence b, query head h = g·rep + r of key/value
 * head g, σ = 1/√d:
 * <pre>
 *   S_ij = σ q_i·k_j (j ≤ i),   P = softmax(S) row by row in fp32,   O_i = Σ_j P_ij v_j,   lse_i = log Σ_j e^S_ij
 *   backward  P_ij = exp(S_ij − lse_i) (recomputed),  D_i = dO_i·O_i,  dS_ij = σ P_ij (dO_i·v_j − D_i)
 *             dq_i = Σ_j dS_ij k_j,   dk_j = Σ_{h of g} Σ_{i ≥ j} dS_ij q_i,   dv_j = Σ_{h of g} Σ_{i ≥ j} P_ij dO_i
 * </pre>
 * Layout as the JVM twin: q, O [B·S, H·d]; k, v [B·S, KV·d]; lse [B·H·S]; the probabilities (and dS) go through a
 * device scratch [B·H, S, S] that one layer at a time uses, so what a step keeps for backward is O and lse only.
 * Work-items are (row, kv head, sequence) with the group's query heads looped inside, so that no index is divided
 * (TornadoVM's OpenCL code divides signed ints wrongly by powers of two).
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /** Task 1 of the forward: P (normalised, into {@code p}) and lse for each query row. */
    public static void probabilities(FloatArray q, FloatArray k, FloatArray p, FloatArray lse, int seq, int kvHeads,
                                     int batch, int rep, int headDim, float scale) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kw = kvHeads * headDim;
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int pair = b * heads + h;
                        int qo = (b * seq + i) * qw + h * headDim;
                        int po = (pair * seq + i) * seq;
                        float m = -Float.MAX_VALUE;
                        for (int j = 0; j <= i; j++) {
                            int ko = (b * seq + j) * kw + g * headDim;
                            float s = 0f;
                            for (int dd = 0; dd < headDim; dd++) {
                                s += q.get(qo + dd) * k.get(ko + dd);
                            }
                            s = s * scale;
                            p.set(po + j, s);
                            m = TornadoMath.max(m, s);
                        }
                        float sum = 0f;
                        for (int j = 0; j <= i; j++) {
                            float e = Exp.exp(p.get(po + j) - m);
                            p.set(po + j, e);
                            sum += e;
                        }
                        float inv = 1f / sum;
                        for (int j = 0; j <= i; j++) {
                            p.set(po + j, p.get(po + j) * inv);
                        }
                        lse.set(pair * seq + i, m + TornadoMath.log(sum));
                    }
                }
            }
        }
    }

    /**
     * Task 2 of the forward, O_i = Σ_{j ≤ i} P_ij v_j, and task 2 of the backward, dq_i = Σ_{j ≤ i} dS_ij k_j (the
     * same product with dS and k); one work-item per (column of a head, row, sequence).
     */
    public static void context(FloatArray p, FloatArray v, FloatArray out, int headDim, int seq, int batch,
                               int kvHeads, int rep) {
        for (@Parallel int dd = 0; dd < headDim; dd++) {
            for (@Parallel int i = 0; i < seq; i++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kw = kvHeads * headDim;
                    for (int g = 0; g < kvHeads; g++) {
                        for (int r = 0; r < rep; r++) {
                            int h = g * rep + r;
                            int po = ((b * heads + h) * seq + i) * seq;
                            float acc = 0f;
                            for (int j = 0; j <= i; j++) {
                                acc += p.get(po + j) * v.get((b * seq + j) * kw + g * headDim + dd);
                            }
                            out.set((b * seq + i) * qw + h * headDim + dd, acc);
                        }
                    }
                }
            }
        }
    }

    /** Task 1 of the backward: P recomputed from lse, and dS, both into [B·H, S, S] scratches. */
    public static void scoreGradients(FloatArray q, FloatArray k, FloatArray v, FloatArray out, FloatArray dOut,
                                      FloatArray lse, FloatArray p, FloatArray ds, int seq, int kvHeads, int batch,
                                      int rep, int headDim, float scale) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kw = kvHeads * headDim;
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int pair = b * heads + h;
                        int qo = (b * seq + i) * qw + h * headDim;
                        int po = (pair * seq + i) * seq;
                        float l = lse.get(pair * seq + i);
                        float di = 0f;
                        for (int dd = 0; dd < headDim; dd++) {
                            di += dOut.get(qo + dd) * out.get(qo + dd);
                        }
                        for (int j = 0; j <= i; j++) {
                            int ko = (b * seq + j) * kw + g * headDim;
                            float s = 0f;
                            float dp = 0f;
                            for (int dd = 0; dd < headDim; dd++) {
                                s += q.get(qo + dd) * k.get(ko + dd);
                                dp += dOut.get(qo + dd) * v.get(ko + dd);
                            }
                            float pij = Exp.exp(s * scale - l);
                            p.set(po + j, pij);
                            ds.set(po + j, pij * (dp - di) * scale);
                        }
                    }
                }
            }
        }
    }

    /** Task 3 of the backward: dk_j and dv_j, summed over the rows i ≥ j and the group's query heads. */
    public static void keyValueGradients(FloatArray ds, FloatArray p, FloatArray q, FloatArray dOut, FloatArray dk,
                                         FloatArray dv, int headDim, int seq, int batch, int kvHeads, int rep) {
        for (@Parallel int dd = 0; dd < headDim; dd++) {
            for (@Parallel int j = 0; j < seq; j++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kw = kvHeads * headDim;
                    for (int g = 0; g < kvHeads; g++) {
                        float accK = 0f;
                        float accV = 0f;
                        for (int r = 0; r < rep; r++) {
                            int h = g * rep + r;
                            int pairBase = (b * heads + h) * seq;
                            for (int i = j; i < seq; i++) {
                                int pij = (pairBase + i) * seq + j;
                                int qi = (b * seq + i) * qw + h * headDim + dd;
                                accK += ds.get(pij) * q.get(qi);
                                accV += p.get(pij) * dOut.get(qi);
                            }
                        }
                        int o = (b * seq + j) * kw + g * headDim + dd;
                        dk.set(o, accK);
                        dv.set(o, accV);
                    }
                }
            }
        }
    }
}
