package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import dev.tornadolora.math.Exp;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

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
 * The forward reads k and v as blocks of 16 lanes ({@link #keyBlocks}, {@link #valueBlocks}): PoCL turns a
 * {@link Float16} product into one vector instruction, and its loop vectoriser leaves the scalar loops alone (their
 * 32-bit indices hide that neighbouring loads are neighbours).
 * Work-items are (row, kv head, sequence) with the group's query heads looped inside, so that no index is divided
 * (TornadoVM's OpenCL code divides signed ints wrongly by powers of two).
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /** Lanes of a {@link Float16}: the forward's block of key positions and of head dims. */
    public static final int LANES = 16;

    /**
     * Task 1 of the forward: k [B·S, KV·d] into kBlocks [B·KV, d, ⌈S/16⌉], lane l of block jb holding
     * k[b·S + 16·jb + l, g·d + dd] (positions past S repeat the last: finite, and never stored), so that the scores
     * of 16 key positions are one vector product per head dim.
     */
    public static void keyBlocks(FloatArray k, VectorFloat16 kBlocks, int seq, int kvHeads, int batch, int headDim,
                                 int blocks) {
        for (@Parallel int jb = 0; jb < blocks; jb++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int kw = kvHeads * headDim;
                    int last = seq - 1;
                    int j0 = jb * LANES;
                    int to = (b * kvHeads + g) * headDim * blocks + jb;
                    for (int dd = 0; dd < headDim; dd++) {
                        int c = b * seq * kw + g * headDim + dd;
                        kBlocks.set(to + dd * blocks, new Float16(k.get(c + Math.min(j0, last) * kw),
                                k.get(c + Math.min(j0 + 1, last) * kw), k.get(c + Math.min(j0 + 2, last) * kw),
                                k.get(c + Math.min(j0 + 3, last) * kw), k.get(c + Math.min(j0 + 4, last) * kw),
                                k.get(c + Math.min(j0 + 5, last) * kw), k.get(c + Math.min(j0 + 6, last) * kw),
                                k.get(c + Math.min(j0 + 7, last) * kw), k.get(c + Math.min(j0 + 8, last) * kw),
                                k.get(c + Math.min(j0 + 9, last) * kw), k.get(c + Math.min(j0 + 10, last) * kw),
                                k.get(c + Math.min(j0 + 11, last) * kw), k.get(c + Math.min(j0 + 12, last) * kw),
                                k.get(c + Math.min(j0 + 13, last) * kw), k.get(c + Math.min(j0 + 14, last) * kw),
                                k.get(c + Math.min(j0 + 15, last) * kw)));
                    }
                }
            }
        }
    }

    /**
     * Task 2 of the forward: v [B·S, KV·d] into vBlocks [B·S·KV, ⌈d/16⌉], lane l of block cb holding v's head dim
     * 16·cb + l (dims past d repeat the last: never stored).
     */
    public static void valueBlocks(FloatArray v, VectorFloat16 vBlocks, int rows, int kvHeads, int headDim,
                                   int dBlocks) {
        for (@Parallel int t = 0; t < rows; t++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                int o = (t * kvHeads + g) * headDim;
                int last = o + headDim - 1;
                for (int cb = 0; cb < dBlocks; cb++) {
                    int c = o + cb * LANES;
                    vBlocks.set((t * kvHeads + g) * dBlocks + cb, new Float16(v.get(Math.min(c, last)),
                            v.get(Math.min(c + 1, last)), v.get(Math.min(c + 2, last)), v.get(Math.min(c + 3, last)),
                            v.get(Math.min(c + 4, last)), v.get(Math.min(c + 5, last)), v.get(Math.min(c + 6, last)),
                            v.get(Math.min(c + 7, last)), v.get(Math.min(c + 8, last)), v.get(Math.min(c + 9, last)),
                            v.get(Math.min(c + 10, last)), v.get(Math.min(c + 11, last)),
                            v.get(Math.min(c + 12, last)), v.get(Math.min(c + 13, last)),
                            v.get(Math.min(c + 14, last)), v.get(Math.min(c + 15, last))));
                }
            }
        }
    }

    /**
     * Task 3 of the forward: for each query row, its scores, softmax (P into the row of {@code p}), lse and O. The
     * scores take four blocks of 16 key positions at a time (a lane per position, d ascending), O four blocks of 16
     * head dims (a lane per dim, j ascending): each lane's sum is the plain loop's, in its order, so O and lse equal
     * the scalar kernel's bit for bit; four accumulators because PoCL runs each work-item's sums one after another
     * and one alone would wait on the adder. Past the row's last block (or the head's last dim block) the block index
     * repeats the last one: the same values computed again and stored again, no branch.
     */
    public static void forward(FloatArray q, VectorFloat16 kBlocks, VectorFloat16 vBlocks, FloatArray p,
                               FloatArray out, FloatArray lse, int seq, int kvHeads, int batch, int rep, int headDim,
                               float scale, int blocks, int dBlocks) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int ko = (b * kvHeads + g) * headDim * blocks;
                    int vo = (b * seq * kvHeads + g) * dBlocks;
                    int vw = kvHeads * dBlocks;
                    int lastBlock = i >> 4;  // i / LANES, as a shift (TornadoVM's signed / by 2^n is wrong)
                    int lastD = dBlocks - 1;
                    Float16 sc = Matmul.splat(scale);
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int pair = b * heads + h;
                        int qo = (b * seq + i) * qw + h * headDim;
                        int po = (pair * seq + i) * seq;
                        for (int jb = 0; jb <= lastBlock; jb += 4) {
                            int jb1 = Math.min(jb + 1, lastBlock);
                            int jb2 = Math.min(jb + 2, lastBlock);
                            int jb3 = Math.min(jb + 3, lastBlock);
                            Float16 s0 = Matmul.zero(), s1 = Matmul.zero(), s2 = Matmul.zero(), s3 = Matmul.zero();
                            for (int dd = 0; dd < headDim; dd++) {
                                Float16 qd = Matmul.splat(q.get(qo + dd));
                                int kr = ko + dd * blocks;
                                s0 = Float16.add(s0, Float16.mult(qd, kBlocks.get(kr + jb)));
                                s1 = Float16.add(s1, Float16.mult(qd, kBlocks.get(kr + jb1)));
                                s2 = Float16.add(s2, Float16.mult(qd, kBlocks.get(kr + jb2)));
                                s3 = Float16.add(s3, Float16.mult(qd, kBlocks.get(kr + jb3)));
                            }
                            Matmul.storeRow(p, po, jb * LANES, i + 1, Float16.mult(s0, sc));
                            Matmul.storeRow(p, po, jb1 * LANES, i + 1, Float16.mult(s1, sc));
                            Matmul.storeRow(p, po, jb2 * LANES, i + 1, Float16.mult(s2, sc));
                            Matmul.storeRow(p, po, jb3 * LANES, i + 1, Float16.mult(s3, sc));
                        }
                        float m = -Float.MAX_VALUE;
                        for (int j = 0; j <= i; j++) {
                            m = TornadoMath.max(m, p.get(po + j));
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
                        for (int cb = 0; cb < dBlocks; cb += 4) {
                            int cb1 = Math.min(cb + 1, lastD);
                            int cb2 = Math.min(cb + 2, lastD);
                            int cb3 = Math.min(cb + 3, lastD);
                            Float16 o0 = Matmul.zero(), o1 = Matmul.zero(), o2 = Matmul.zero(), o3 = Matmul.zero();
                            for (int j = 0; j <= i; j++) {
                                Float16 pj = Matmul.splat(p.get(po + j));
                                int vr = vo + j * vw;
                                o0 = Float16.add(o0, Float16.mult(pj, vBlocks.get(vr + cb)));
                                o1 = Float16.add(o1, Float16.mult(pj, vBlocks.get(vr + cb1)));
                                o2 = Float16.add(o2, Float16.mult(pj, vBlocks.get(vr + cb2)));
                                o3 = Float16.add(o3, Float16.mult(pj, vBlocks.get(vr + cb3)));
                            }
                            Matmul.storeRow(out, qo, cb * LANES, headDim, o0);
                            Matmul.storeRow(out, qo, cb1 * LANES, headDim, o1);
                            Matmul.storeRow(out, qo, cb2 * LANES, headDim, o2);
                            Matmul.storeRow(out, qo, cb3 * LANES, headDim, o3);
                        }
                        lse.set(pair * seq + i, m + TornadoMath.log(sum));
                    }
                }
            }
        }
    }

    /**
     * Task 2 of the backward, dq_i = Σ_{j ≤ i} dS_ij k_j (O = P·V's product with dS and k); one work-item per
     * (column of a head, row, sequence).
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
