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
 * Forward and backward read k, v (the backward also q and dO) as blocks of 16 lanes ({@link #keyValueBlocks},
 * {@link #rowBlocks}): PoCL turns a {@link Float16} product into one vector instruction, and its loop vectoriser
 * leaves the scalar loops alone (their 32-bit indices hide that neighbouring loads are neighbours).
 * Work-items are (row, kv head, sequence) with the group's query heads looped inside, so that no index is divided
 * (TornadoVM's OpenCL code divides signed ints wrongly by powers of two).
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /** Lanes of a {@link Float16}: the forward's block of key positions and of head dims. */
    public static final int LANES = 16;

    /**
     * Task 1 of the forward, and of the backward with the operands swapped: {@code cols} [B·S, KV·d] into
     * colBlocks [B·KV, d, ⌈S/16⌉], lane l of block jb holding cols[b·S + 16·jb + l, g·d + dd] (positions past S
     * repeat the last: finite, and never stored), so that the scores of 16 key positions are one vector product per
     * head dim; and {@code rows} [B·S, KV·d] into rowBlocks [B·S·KV, ⌈d/16⌉] as {@link #rowBlocks} does, the rows
     * of the same 16 positions. The forward takes k as columns and v as rows, the backward v as columns and k as
     * rows (k's columns it keeps from the forward): one launch for two layouts.
     */
    public static void keyValueBlocks(FloatArray cols, FloatArray rows, VectorFloat16 colBlocks,
                                      VectorFloat16 rowBlocks, int seq, int kvHeads, int batch, int headDim,
                                      int blocks, int dBlocks) {
        for (@Parallel int jb = 0; jb < blocks; jb++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int kw = kvHeads * headDim;
                    int j0 = jb * LANES;
                    int to = (b * kvHeads + g) * headDim * blocks + jb;
                    for (int dd = 0; dd < headDim; dd++) {
                        colBlocks.set(to + dd * blocks, lanes(cols, b * seq * kw + g * headDim + dd, kw, j0, seq - 1));
                    }
                    int end = Math.min(j0 + LANES, seq);
                    for (int j = j0; j < end; j++) {
                        int row = (b * seq + j) * kvHeads + g;
                        for (int cb = 0; cb < dBlocks; cb++) {
                            rowBlocks.set(row * dBlocks + cb, lanes(rows, row * headDim, 1, cb * LANES, headDim - 1));
                        }
                    }
                }
            }
        }
    }

    /**
     * Two operands of one shape [rows, H·d] (the backward's q and dO) into [rows·H, ⌈d/16⌉] blocks of 16 head
     * dims, lane l of block cb holding dim 16·cb + l (dims past d repeat the last: never stored): one launch for two.
     */
    public static void rowBlocks(FloatArray a, FloatArray b, VectorFloat16 aBlocks, VectorFloat16 bBlocks, int rows,
                                 int heads, int headDim, int dBlocks) {
        for (@Parallel int t = 0; t < rows; t++) {
            for (@Parallel int h = 0; h < heads; h++) {
                int row = t * heads + h;
                for (int cb = 0; cb < dBlocks; cb++) {
                    aBlocks.set(row * dBlocks + cb, lanes(a, row * headDim, 1, cb * LANES, headDim - 1));
                    bBlocks.set(row * dBlocks + cb, lanes(b, row * headDim, 1, cb * LANES, headDim - 1));
                }
            }
        }
    }

    /** 16 lanes: lane l = a[base + min(first + l, last) · stride] (past the last, the last again). */
    private static Float16 lanes(FloatArray a, int base, int stride, int first, int last) {
        return new Float16(a.get(base + Math.min(first, last) * stride),
                a.get(base + Math.min(first + 1, last) * stride), a.get(base + Math.min(first + 2, last) * stride),
                a.get(base + Math.min(first + 3, last) * stride), a.get(base + Math.min(first + 4, last) * stride),
                a.get(base + Math.min(first + 5, last) * stride), a.get(base + Math.min(first + 6, last) * stride),
                a.get(base + Math.min(first + 7, last) * stride), a.get(base + Math.min(first + 8, last) * stride),
                a.get(base + Math.min(first + 9, last) * stride), a.get(base + Math.min(first + 10, last) * stride),
                a.get(base + Math.min(first + 11, last) * stride), a.get(base + Math.min(first + 12, last) * stride),
                a.get(base + Math.min(first + 13, last) * stride), a.get(base + Math.min(first + 14, last) * stride),
                a.get(base + Math.min(first + 15, last) * stride));
    }

    /**
     * Task 2 of the forward: for each query row, its scores, softmax (P into the row of {@code p}), lse and O. The
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
     * Backward, task 1 (after {@link #keyValueBlocks}: k's columns the forward's, v's the backward's): P
     * recomputed from lse, and dS, into the [B·H, S, S] scratches. As {@link #forward}'s scores: q_i·k_j and
     * dO_i·v_j for 16 key positions a lane, four blocks at a time, each lane's sum over d ascending (the plain loop's
     * order); the raw sums go to the rows of {@code p} and {@code ds}, then P_ij = exp(σ·s_ij − lse_i) and
     * dS_ij = σ P_ij (dp_ij − D_i) position by position.
     */
    public static void scoreGradients(FloatArray q, VectorFloat16 kBlocks, VectorFloat16 vBlocks, FloatArray out,
                                      FloatArray dOut, FloatArray lse, FloatArray p, FloatArray ds, int seq,
                                      int kvHeads, int batch, int rep, int headDim, float scale, int blocks) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int ko = (b * kvHeads + g) * headDim * blocks;
                    int lastBlock = i >> 4;  // i / LANES, as a shift (TornadoVM's signed / by 2^n is wrong)
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
                        for (int jb = 0; jb <= lastBlock; jb += 4) {
                            int jb1 = Math.min(jb + 1, lastBlock);
                            int jb2 = Math.min(jb + 2, lastBlock);
                            int jb3 = Math.min(jb + 3, lastBlock);
                            Float16 s0 = Matmul.zero(), s1 = Matmul.zero(), s2 = Matmul.zero(), s3 = Matmul.zero();
                            Float16 d0 = Matmul.zero(), d1 = Matmul.zero(), d2 = Matmul.zero(), d3 = Matmul.zero();
                            for (int dd = 0; dd < headDim; dd++) {
                                Float16 qd = Matmul.splat(q.get(qo + dd));
                                Float16 od = Matmul.splat(dOut.get(qo + dd));
                                int kr = ko + dd * blocks;
                                s0 = Float16.add(s0, Float16.mult(qd, kBlocks.get(kr + jb)));
                                s1 = Float16.add(s1, Float16.mult(qd, kBlocks.get(kr + jb1)));
                                s2 = Float16.add(s2, Float16.mult(qd, kBlocks.get(kr + jb2)));
                                s3 = Float16.add(s3, Float16.mult(qd, kBlocks.get(kr + jb3)));
                                d0 = Float16.add(d0, Float16.mult(od, vBlocks.get(kr + jb)));
                                d1 = Float16.add(d1, Float16.mult(od, vBlocks.get(kr + jb1)));
                                d2 = Float16.add(d2, Float16.mult(od, vBlocks.get(kr + jb2)));
                                d3 = Float16.add(d3, Float16.mult(od, vBlocks.get(kr + jb3)));
                            }
                            Matmul.storeRow(p, po, jb * LANES, i + 1, s0);
                            Matmul.storeRow(p, po, jb1 * LANES, i + 1, s1);
                            Matmul.storeRow(p, po, jb2 * LANES, i + 1, s2);
                            Matmul.storeRow(p, po, jb3 * LANES, i + 1, s3);
                            Matmul.storeRow(ds, po, jb * LANES, i + 1, d0);
                            Matmul.storeRow(ds, po, jb1 * LANES, i + 1, d1);
                            Matmul.storeRow(ds, po, jb2 * LANES, i + 1, d2);
                            Matmul.storeRow(ds, po, jb3 * LANES, i + 1, d3);
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
     * Backward, task 2: dq_i = Σ_{j ≤ i} dS_ij k_j (σ is in dS), k as rows of 16-dim blocks (the backward's
     * {@link #keyValueBlocks}), four blocks at a time, each lane's sum over j ascending.
     */
    public static void queryGradients(FloatArray ds, VectorFloat16 kRows, FloatArray dq, int seq, int kvHeads,
                                      int batch, int rep, int headDim, int dBlocks) {
        for (@Parallel int i = 0; i < seq; i++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int qw = heads * headDim;
                    int lastD = dBlocks - 1;
                    int kw = kvHeads * dBlocks;
                    int ko = (b * seq * kvHeads + g) * dBlocks;
                    for (int r = 0; r < rep; r++) {
                        int h = g * rep + r;
                        int po = ((b * heads + h) * seq + i) * seq;
                        int o = (b * seq + i) * qw + h * headDim;
                        for (int cb = 0; cb < dBlocks; cb += 4) {
                            int cb1 = Math.min(cb + 1, lastD);
                            int cb2 = Math.min(cb + 2, lastD);
                            int cb3 = Math.min(cb + 3, lastD);
                            Float16 a0 = Matmul.zero(), a1 = Matmul.zero(), a2 = Matmul.zero(), a3 = Matmul.zero();
                            for (int j = 0; j <= i; j++) {
                                Float16 sj = Matmul.splat(ds.get(po + j));
                                int kr = ko + j * kw;
                                a0 = Float16.add(a0, Float16.mult(sj, kRows.get(kr + cb)));
                                a1 = Float16.add(a1, Float16.mult(sj, kRows.get(kr + cb1)));
                                a2 = Float16.add(a2, Float16.mult(sj, kRows.get(kr + cb2)));
                                a3 = Float16.add(a3, Float16.mult(sj, kRows.get(kr + cb3)));
                            }
                            Matmul.storeRow(dq, o, cb * LANES, headDim, a0);
                            Matmul.storeRow(dq, o, cb1 * LANES, headDim, a1);
                            Matmul.storeRow(dq, o, cb2 * LANES, headDim, a2);
                            Matmul.storeRow(dq, o, cb3 * LANES, headDim, a3);
                        }
                    }
                }
            }
        }
    }

    /**
     * Backward, task 3: dk_j = Σ_{h of g} Σ_{i ≥ j} dS_ij q_i and dv_j = Σ_{h of g} Σ_{i ≥ j} P_ij dO_i, q and dO as
     * rows of 16-dim blocks ({@link #rowBlocks} of q and dO), four blocks of each at a time, each lane's sum over
     * the group's heads, then i ascending. The column j of P and dS is read
     * strided, a scalar a row for eight vector products.
     */
    public static void keyValueGradients(FloatArray ds, FloatArray p, VectorFloat16 qRows, VectorFloat16 dOutRows,
                                         FloatArray dk, FloatArray dv, int seq, int kvHeads, int batch, int rep,
                                         int headDim, int dBlocks) {
        for (@Parallel int j = 0; j < seq; j++) {
            for (@Parallel int g = 0; g < kvHeads; g++) {
                for (@Parallel int b = 0; b < batch; b++) {
                    int heads = kvHeads * rep;
                    int lastD = dBlocks - 1;
                    int o = (b * seq + j) * kvHeads * headDim + g * headDim;
                    for (int cb = 0; cb < dBlocks; cb += 4) {
                        int cb1 = Math.min(cb + 1, lastD);
                        int cb2 = Math.min(cb + 2, lastD);
                        int cb3 = Math.min(cb + 3, lastD);
                        Float16 k0 = Matmul.zero(), k1 = Matmul.zero(), k2 = Matmul.zero(), k3 = Matmul.zero();
                        Float16 v0 = Matmul.zero(), v1 = Matmul.zero(), v2 = Matmul.zero(), v3 = Matmul.zero();
                        for (int r = 0; r < rep; r++) {
                            int h = g * rep + r;
                            int pairBase = (b * heads + h) * seq;
                            for (int i = j; i < seq; i++) {
                                int c = (pairBase + i) * seq + j;
                                Float16 si = Matmul.splat(ds.get(c));
                                Float16 pi = Matmul.splat(p.get(c));
                                int qr = ((b * seq + i) * heads + h) * dBlocks;
                                k0 = Float16.add(k0, Float16.mult(si, qRows.get(qr + cb)));
                                k1 = Float16.add(k1, Float16.mult(si, qRows.get(qr + cb1)));
                                k2 = Float16.add(k2, Float16.mult(si, qRows.get(qr + cb2)));
                                k3 = Float16.add(k3, Float16.mult(si, qRows.get(qr + cb3)));
                                v0 = Float16.add(v0, Float16.mult(pi, dOutRows.get(qr + cb)));
                                v1 = Float16.add(v1, Float16.mult(pi, dOutRows.get(qr + cb1)));
                                v2 = Float16.add(v2, Float16.mult(pi, dOutRows.get(qr + cb2)));
                                v3 = Float16.add(v3, Float16.mult(pi, dOutRows.get(qr + cb3)));
                            }
                        }
                        Matmul.storeRow(dk, o, cb * LANES, headDim, k0);
                        Matmul.storeRow(dk, o, cb1 * LANES, headDim, k1);
                        Matmul.storeRow(dk, o, cb2 * LANES, headDim, k2);
                        Matmul.storeRow(dk, o, cb3 * LANES, headDim, k3);
                        Matmul.storeRow(dv, o, cb * LANES, headDim, v0);
                        Matmul.storeRow(dv, o, cb1 * LANES, headDim, v1);
                        Matmul.storeRow(dv, o, cb2 * LANES, headDim, v2);
                        Matmul.storeRow(dv, o, cb3 * LANES, headDim, v3);
                    }
                }
            }
        }
    }
}
