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
 * device scratch [B·H, S, S] that one layer at a time uses, so what a step keeps for backward is O and lse only;
 * the backward also transposes k and v into a scratch [B, KV, d, S] each.
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


    /**
     * Backward, task 0: kᵀ and vᵀ of each (sequence, kv head), [B, KV, d, S], so that {@link #scoreGradients}
     * reads the keys of a row's scores contiguously.
     */
    public static void transposeKeysValues(FloatArray k, FloatArray v, FloatArray kT, FloatArray vT, int seq,
                                           int kvHeads, int batch, int headDim) {
        for (@Parallel int j = 0; j < seq; j++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int ko = (b * seq + j) * kvHeads * headDim + g * headDim;
                    int to = (b * kvHeads + g) * headDim * seq + j;
                    for (int dd = 0; dd < headDim; dd++) {
                        kT.set(to + dd * seq, k.get(ko + dd));
                        vT.set(to + dd * seq, v.get(ko + dd));
                    }
                }
            }
        }
    }

    /**
     * Backward, task 1: P recomputed from lse, and dS, into [B·H, S, S] scratches. The row's scores are the
     * accumulators: q_i·k_j and dO_i·v_j grow over d, four terms a pass (each sum still in the order of d), for
     * every j ≤ i at once, so that the innermost loop runs along the row (kᵀ, vᵀ from
     * {@link #transposeKeysValues}) and PoCL's compiler vectorises it; a dot product per (i, j) is a reduction,
     * which it cannot vectorise without fast-math's reassociation (the scalar form took 3–8× longer on PoCL).
     */
    public static void scoreGradients(FloatArray q, FloatArray kT, FloatArray vT, FloatArray out, FloatArray dOut,
                                      FloatArray lse, FloatArray p, FloatArray ds, int seq, int kvHeads, int batch,
                                      int rep, int headDim, float scale) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kb = (b * kvHeads + g) * headDim * seq;
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
                            p.set(po + j, 0f);
                            ds.set(po + j, 0f);
                        }
                        int d4 = headDim - headDim % 4;
                        for (int dd = 0; dd < d4; dd += 4) {
                            float q0 = q.get(qo + dd), q1 = q.get(qo + dd + 1), q2 = q.get(qo + dd + 2);
                            float q3 = q.get(qo + dd + 3);
                            float o0 = dOut.get(qo + dd), o1 = dOut.get(qo + dd + 1), o2 = dOut.get(qo + dd + 2);
                            float o3 = dOut.get(qo + dd + 3);
                            int k0 = kb + dd * seq;
                            for (int j = 0; j <= i; j++) {
                                p.set(po + j, p.get(po + j) + q0 * kT.get(k0 + j) + q1 * kT.get(k0 + seq + j)
                                        + q2 * kT.get(k0 + 2 * seq + j) + q3 * kT.get(k0 + 3 * seq + j));
                                ds.set(po + j, ds.get(po + j) + o0 * vT.get(k0 + j) + o1 * vT.get(k0 + seq + j)
                                        + o2 * vT.get(k0 + 2 * seq + j) + o3 * vT.get(k0 + 3 * seq + j));
                            }
                        }
                        for (int dd = d4; dd < headDim; dd++) {
                            float q0 = q.get(qo + dd), o0 = dOut.get(qo + dd);
                            int k0 = kb + dd * seq;
                            for (int j = 0; j <= i; j++) {
                                p.set(po + j, p.get(po + j) + q0 * kT.get(k0 + j));
                                ds.set(po + j, ds.get(po + j) + o0 * vT.get(k0 + j));
                            }
                        }
                        for (int j = 0; j <= i; j++) {
                            float pij = Exp.exp(p.get(po + j) * scale - l);
                            p.set(po + j, pij);
                            ds.set(po + j, pij * (ds.get(po + j) - di) * scale);
                        }
                    }
                }
            }
        }
    }

    /**
     * Backward, task 2: dq_i = Σ_{j ≤ i} dS_ij k_j (σ is in dS), summed in the order of j, with the row of dq as
     * the accumulator (the innermost loop along d, vectorised) and four keys a pass over it.
     */
    public static void queryGradients(FloatArray ds, FloatArray k, FloatArray dq, int seq, int kvHeads, int batch,
                                      int rep, int headDim) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int kw = kvHeads * headDim;
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int po = ((b * heads + h) * seq + i) * seq;
                        int o = (b * seq + i) * qw + h * headDim;
                        for (int dd = 0; dd < headDim; dd++) {
                            dq.set(o + dd, 0f);
                        }
                        int n4 = (i + 1) - (i + 1) % 4;
                        for (int j = 0; j < n4; j += 4) {
                            float a0 = ds.get(po + j), a1 = ds.get(po + j + 1), a2 = ds.get(po + j + 2);
                            float a3 = ds.get(po + j + 3);
                            int k0 = (b * seq + j) * kw + g * headDim;
                            for (int dd = 0; dd < headDim; dd++) {
                                dq.set(o + dd, dq.get(o + dd) + a0 * k.get(k0 + dd) + a1 * k.get(k0 + kw + dd)
                                        + a2 * k.get(k0 + 2 * kw + dd) + a3 * k.get(k0 + 3 * kw + dd));
                            }
                        }
                        for (int j = n4; j <= i; j++) {
                            float a0 = ds.get(po + j);
                            int k0 = (b * seq + j) * kw + g * headDim;
                            for (int dd = 0; dd < headDim; dd++) {
                                dq.set(o + dd, dq.get(o + dd) + a0 * k.get(k0 + dd));
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Backward, task 3: dk_j = Σ_{h of g} Σ_{i ≥ j} dS_ij q_i and dv_j = Σ_{h of g} Σ_{i ≥ j} P_ij dO_i, summed
     * over the group's heads, then the rows in order, with the rows of dk and dv as the accumulators (the innermost
     * loop along d, vectorised) and four query rows a pass over them. The column j of P and dS is read strided
     * (a scalar a row, for two 4·d-term updates); the work-items of j and j + 1 share its cache lines.
     */
    public static void keyValueGradients(FloatArray ds, FloatArray p, FloatArray q, FloatArray dOut, FloatArray dk,
                                         FloatArray dv, int seq, int kvHeads, int batch, int rep, int headDim) {
        for (@Parallel int j = 0; j < seq; j++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int o = (b * seq + j) * kvHeads * headDim + g * headDim;
                    for (int dd = 0; dd < headDim; dd++) {
                        dk.set(o + dd, 0f);
                        dv.set(o + dd, 0f);
                    }
                    int n4 = j + (seq - j) - (seq - j) % 4;
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int pairBase = (b * heads + h) * seq;
                        for (int i = j; i < n4; i += 4) {
                            int c0 = (pairBase + i) * seq + j;
                            float s0 = ds.get(c0), s1 = ds.get(c0 + seq), s2 = ds.get(c0 + 2 * seq);
                            float s3 = ds.get(c0 + 3 * seq);
                            float p0 = p.get(c0), p1 = p.get(c0 + seq), p2 = p.get(c0 + 2 * seq);
                            float p3 = p.get(c0 + 3 * seq);
                            int q0 = (b * seq + i) * qw + h * headDim;
                            for (int dd = 0; dd < headDim; dd++) {
                                dk.set(o + dd, dk.get(o + dd) + s0 * q.get(q0 + dd) + s1 * q.get(q0 + qw + dd)
                                        + s2 * q.get(q0 + 2 * qw + dd) + s3 * q.get(q0 + 3 * qw + dd));
                                dv.set(o + dd, dv.get(o + dd) + p0 * dOut.get(q0 + dd)
                                        + p1 * dOut.get(q0 + qw + dd) + p2 * dOut.get(q0 + 2 * qw + dd)
                                        + p3 * dOut.get(q0 + 3 * qw + dd));
                            }
                        }
                        for (int i = n4; i < seq; i++) {
                            int c0 = (pairBase + i) * seq + j;
                            float s0 = ds.get(c0), p0 = p.get(c0);
                            int q0 = (b * seq + i) * qw + h * headDim;
                            for (int dd = 0; dd < headDim; dd++) {
                                dk.set(o + dd, dk.get(o + dd) + s0 * q.get(q0 + dd));
                                dv.set(o + dd, dv.get(o + dd) + p0 * dOut.get(q0 + dd));
                            }
                        }
                    }
                }
            }
        }
    }
}
