package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.Softmax;

/**
 * Causal scaled-dot-product attention with grouped-query heads, as transformers' eager Llama attention computes
 * it: causal, and optionally confined to each query's example (block-diagonal causal, the mask transformers builds
 * for packed {@code position_ids}, see {@link #segmentStarts}), and optionally to a sliding window of W positions
 * (transformers' {@code sliding_window_overlay}, {@code kv_idx > q_idx − W}, anded with the causal and packed masks).
 * For sequence b, query head h and its key/value head g = h / (H / KV) ({@code repeat_kv}), with σ = 1/√d and s(i)
 * the first position i sees: the start of i's example (0 unpacked), or i − W + 1 when that is later:
 * <pre>
 *   S_ij = σ · q_i · k_j   for s(i) ≤ j ≤ i (−∞ elsewhere)          softmax in fp32, row by row ({@link Softmax})
 *   P    = softmax(S),     O_i = Σ_j P_ij v_j
 *   backward, with D_i = dO_i · O_i  (= Σ_j P_ij dP_ij):
 *   dP_ij = dO_i · v_j,    dS_ij = P_ij (dP_ij − D_i)
 *   dq_i = σ Σ_j dS_ij k_j,   dk_j = σ Σ_i dS_ij q_i,   dv_j = Σ_i P_ij dO_i     (summed over the group's heads)
 * </pre>
 * Layout: q and O are [B·S, H·d], k and v [B·S, KV·d], row b·S + s. Forward keeps the log-sum-exp of each row
 * (B·H·S floats) instead of P, and backward recomputes P from it, so what a step keeps stays linear in S (one
 * S×S scratch per thread). {@link #forward}/{@link #backward} are the fast path (register-blocked products,
 * {@link SmallGemm}, below the causal diagonal only; (b, h) pairs over threads); {@link #forwardReference}/{@link #backwardReference} the scalar statement in double.
 */
public final class CausalAttention {
    private final int batch, seq, heads, kvHeads, headDim;
    private final float scale;
    private final Parallel par;
    /** [B·S] the first position (within its row) of each query's example; null: 0 for every query. */
    private final int[] segmentStart;
    /** The sliding window W (a query sees itself and W − 1 positions before it), 0 for none. */
    private final int window;

    /** The attention of these sizes, its (b, h) pairs on {@code par}. */
    public CausalAttention(Parallel par, int batch, int seq, int heads, int kvHeads, int headDim) {
        this(par, batch, seq, heads, kvHeads, headDim, null);
    }

    /** {@code segmentStart} [B·S] as {@link #segmentStarts} computes it, or null for plain causal attention. */
    public CausalAttention(Parallel par, int batch, int seq, int heads, int kvHeads, int headDim, int[] segmentStart) {
        this(par, batch, seq, heads, kvHeads, headDim, segmentStart, 0);
    }

    /** As above within a sliding window of {@code window} positions (0: none). */
    public CausalAttention(Parallel par, int batch, int seq, int heads, int kvHeads, int headDim, int[] segmentStart,
                           int window) {
        if (window < 0) throw new IllegalArgumentException("sliding window must be ≥ 0, got " + window);
        this.window = window;
        if (segmentStart != null && segmentStart.length != batch * seq) {
            throw new IllegalArgumentException("segment starts: expected " + batch * seq + " but got " + segmentStart.length);
        }
        this.segmentStart = segmentStart;
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of kv heads " + kvHeads);
        }
        this.par = par;
        this.batch = batch;
        this.seq = seq;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.scale = (float) (1.0 / Math.sqrt(headDim));
    }

    /**
     * Where each token's example starts, from position ids [B·S] as transformers reads packed sequences
     * ({@code find_packed_sequence_indices}): a new example begins at position 0 of a row and wherever
     * {@code position_ids[i] − position_ids[i−1] ≠ 1}. Returns null when every row is one example (0, 1, …, S−1).
     */
    public static int[] segmentStarts(int[] positionIds, int batch, int seq) {
        if (positionIds == null) return null;
        int[] start = new int[batch * seq];
        boolean packed = false;
        for (int b = 0; b < batch; b++) {
            int s0 = 0;
            for (int i = 0; i < seq; i++) {
                int t = b * seq + i;
                if (i > 0 && positionIds[t] - positionIds[t - 1] != 1) {
                    s0 = i;
                    packed = true;
                }
                start[t] = s0;
            }
        }
        return packed ? start : null;
    }

    /** The first key position query i of row b sees: its example's start, or the window's, whichever is later. */
    private int start(int b, int i) {
        int s0 = segmentStart == null ? 0 : segmentStart[b * seq + i];
        return window > 0 ? Math.max(s0, i - window + 1) : s0;
    }

    /** O for q, k, v; writes the rows' log-sum-exp [B·H·S] to {@code lse} when it is not null. */
    public void forward(float[] q, float[] k, float[] v, float[] out, float[] lse) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        par.range(batch * heads, 1, (p0, p1) -> {
            float[] kT = new float[d * seq];
            float[] p = new float[seq * seq];
            for (int pair = p0; pair < p1; pair++) {
                int b = pair / heads, h = pair % heads, g = h / rep;
                int qBase = b * seq * qw + h * d, kvBase = b * seq * kw + g * d;
                transpose(k, b * seq, kw, g * d, kT);
                scores(q, qBase, qw, kT, p);
                for (int i = 0; i < seq; i++) {
                    int o = i * seq, n = i + 1, s0 = start(b, i);
                    float rowLse = Softmax.softmaxInPlace(Vec.ROWS, n - s0, p, o + s0, scale);
                    java.util.Arrays.fill(p, o, o + s0, 0f);
                    java.util.Arrays.fill(p, o + n, o + blockEnd(i), 0f);
                    java.util.Arrays.fill(out, qBase + i * qw, qBase + i * qw + d, 0f);
                    if (lse != null) lse[pair * seq + i] = rowLse;
                }
                // O = P·V, row block by row block up to its diagonal.
                for (int i0 = 0; i0 < seq; i0 += 4) {
                    int rows = Math.min(4, seq - i0);
                    SmallGemm.rowBlock(i0, rows, d, 0, blockEnd(i0), p, 0, seq, 1, v, kvBase, kw, out, qBase, qw);
                }
            }
        });
    }

    /** Columns a row block starting at (or holding) row i computes: up to its last row's diagonal. */
    private int blockEnd(int i) {
        return Math.min(seq, (i / 4) * 4 + 4);
    }

    /** s[i·seq + j] = q_i · k_j for j below the row block's diagonal end (unscaled); kT is [d, seq]. */
    private void scores(float[] q, int qBase, int qw, float[] kT, float[] s) {
        for (int i0 = 0; i0 < seq; i0 += 4) {
            int rows = Math.min(4, seq - i0), n = blockEnd(i0);
            for (int r = i0; r < i0 + rows; r++) java.util.Arrays.fill(s, r * seq, r * seq + n, 0f);
            SmallGemm.rowBlock(i0, rows, n, 0, headDim, q, qBase, qw, 1, kT, 0, seq, s, 0, seq);
        }
    }

    /** dq, dk, dv (overwritten) from dO, the forward's inputs, its output O and its log-sum-exp. */
    public void backward(float[] dOut, float[] q, float[] k, float[] v, float[] out, float[] lse,
                         float[] dq, float[] dk, float[] dv) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        float[][] dkHead = new float[batch * heads][];
        float[][] dvHead = new float[batch * heads][];
        par.range(batch * heads, 1, (p0, p1) -> {
            float[] kT = new float[d * seq], vT = new float[d * seq];
            float[] p = new float[seq * seq], ds = new float[seq * seq];
            float[] pT = new float[seq * seq], dsT = new float[seq * seq];
            for (int pair = p0; pair < p1; pair++) {
                int b = pair / heads, h = pair % heads, g = h / rep;
                int qBase = b * seq * qw + h * d, kvBase = b * seq * kw + g * d;
                transpose(k, b * seq, kw, g * d, kT);
                transpose(v, b * seq, kw, g * d, vT);
                scores(q, qBase, qw, kT, p);
                scores(dOut, qBase, qw, vT, ds);  // dP_ij = dO_i · v_j
                for (int i = 0; i < seq; i++) {
                    int o = i * seq, n = i + 1, end = blockEnd(i), s0 = start(b, i);
                    float l = lse[pair * seq + i];
                    float di = Vec.dot(d, dOut, qBase + i * qw, out, qBase + i * qw);
                    Softmax.probabilitiesInPlace(Vec.ROWS, n - s0, p, o + s0, scale, l);
                    for (int j = s0; j < n; j++) {
                        ds[o + j] = p[o + j] * (ds[o + j] - di) * scale;
                    }
                    java.util.Arrays.fill(p, o, o + s0, 0f);
                    java.util.Arrays.fill(ds, o, o + s0, 0f);
                    java.util.Arrays.fill(p, o + n, o + end, 0f);
                    java.util.Arrays.fill(ds, o + n, o + end, 0f);
                    java.util.Arrays.fill(dq, qBase + i * qw, qBase + i * qw + d, 0f);
                }
                // Pᵀ and dSᵀ below the diagonal, so that dk and dv read rows (contiguous) instead of columns.
                for (int i = 0; i < seq; i++) {
                    int end = blockEnd(i);
                    for (int j = 0; j < end; j++) {
                        pT[j * seq + i] = p[i * seq + j];
                        dsT[j * seq + i] = ds[i * seq + j];
                    }
                }
                float[] dkh = new float[seq * d], dvh = new float[seq * d];
                for (int i0 = 0; i0 < seq; i0 += 4) {
                    int rows = Math.min(4, seq - i0);
                    // dq_i = σ Σ_j dS_ij k_j (σ is in dS)
                    SmallGemm.rowBlock(i0, rows, d, 0, blockEnd(i0), ds, 0, seq, 1, k, kvBase, kw, dq, qBase, qw);
                    // dk_j = Σ_{i ≥ j} dS_ij q_i and dv_j = Σ_{i ≥ j} P_ij dO_i
                    SmallGemm.rowBlock(i0, rows, d, i0, seq, dsT, 0, seq, 1, q, qBase, qw, dkh, 0, d);
                    SmallGemm.rowBlock(i0, rows, d, i0, seq, pT, 0, seq, 1, dOut, qBase, qw, dvh, 0, d);
                }
                dkHead[pair] = dkh;
                dvHead[pair] = dvh;
            }
        });
        par.range(batch * kvHeads, 1, (g0, g1) -> {
            for (int bg = g0; bg < g1; bg++) {
                int b = bg / kvHeads, g = bg % kvHeads;
                for (int s = 0; s < seq; s++) {
                    int o = (b * seq + s) * kw + g * d;
                    java.util.Arrays.fill(dk, o, o + d, 0f);
                    java.util.Arrays.fill(dv, o, o + d, 0f);
                    for (int r = 0; r < rep; r++) {
                        int pair = b * heads + g * rep + r;
                        Vec.axpy(d, 1f, dkHead[pair], s * d, dk, o);
                        Vec.axpy(d, 1f, dvHead[pair], s * d, dv, o);
                    }
                }
            }
        });
    }

    /** kT[dd·seq + s] = x[(row0 + s)·width + col0 + dd]. */
    private void transpose(float[] x, int row0, int width, int col0, float[] kT) {
        for (int s = 0; s < seq; s++) {
            int o = (row0 + s) * width + col0;
            for (int dd = 0; dd < headDim; dd++) {
                kT[dd * seq + s] = x[o + dd];
            }
        }
    }

    // ---------------------------------------------------------------- scalar reference

    /** The probabilities P [B·H, S, S] of the definition, in double (0 outside each query's example). */
    private double[] probabilities(double[] q, double[] k) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        double[] p = new double[batch * heads * seq * seq];
        double sigma = 1 / Math.sqrt(d);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / rep, base = (b * heads + h) * seq * seq;
                for (int i = 0; i < seq; i++) {
                    int s0 = start(b, i);
                    for (int j = s0; j <= i; j++) {
                        double s = 0;
                        for (int dd = 0; dd < d; dd++) {
                            s += q[(b * seq + i) * qw + h * d + dd] * k[(b * seq + j) * kw + g * d + dd];
                        }
                        p[base + i * seq + j] = s * sigma;
                    }
                    int row = base + i * seq;
                    double lse = Softmax.logSumExp(i + 1 - s0, j -> p[row + s0 + j]);
                    for (int j = s0; j <= i; j++) p[base + i * seq + j] = Math.exp(p[base + i * seq + j] - lse);
                }
            }
        }
        return p;
    }

    public double[] forwardReference(double[] q, double[] k, double[] v) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        double[] p = probabilities(q, k);
        double[] out = new double[batch * seq * qw];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / rep, base = (b * heads + h) * seq * seq;
                for (int i = 0; i < seq; i++) {
                    for (int j = 0; j <= i; j++) {
                        for (int dd = 0; dd < d; dd++) {
                            out[(b * seq + i) * qw + h * d + dd] += p[base + i * seq + j] * v[(b * seq + j) * kw + g * d + dd];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** {dq, dk, dv} of the definition, in double. */
    public double[][] backwardReference(double[] dOut, double[] q, double[] k, double[] v) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        double sigma = 1 / Math.sqrt(d);
        double[] p = probabilities(q, k);
        double[] dq = new double[q.length], dk = new double[k.length], dv = new double[v.length];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / rep, base = (b * heads + h) * seq * seq;
                for (int i = 0; i < seq; i++) {
                    double[] dp = new double[i + 1];
                    double di = 0;
                    for (int j = 0; j <= i; j++) {
                        for (int dd = 0; dd < d; dd++) {
                            dp[j] += dOut[(b * seq + i) * qw + h * d + dd] * v[(b * seq + j) * kw + g * d + dd];
                        }
                        di += p[base + i * seq + j] * dp[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        double pij = p[base + i * seq + j], ds = pij * (dp[j] - di);
                        for (int dd = 0; dd < d; dd++) {
                            int qi = (b * seq + i) * qw + h * d + dd, kj = (b * seq + j) * kw + g * d + dd;
                            dq[qi] += sigma * ds * k[kj];
                            dk[kj] += sigma * ds * q[qi];
                            dv[kj] += pij * dOut[qi];
                        }
                    }
                }
            }
        }
        return new double[][] {dq, dk, dv};
    }
}
