package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.jvm.Parallel;

/**
 * Causal scaled-dot-product attention with grouped-query heads, as transformers' eager Llama attention computes
 * it (no attention mask but the causal one). For sequence b, query head h and its key/value head
 * g = h / (H / KV) ({@code repeat_kv}), with σ = 1/√d:
 * <pre>
 *   S_ij = σ · q_i · k_j   for j ≤ i (−∞ above the diagonal)      softmax in fp32, row by row
 *   P    = softmax(S),     O_i = Σ_j P_ij v_j
 *   backward, with D_i = dO_i · O_i  (= Σ_j P_ij dP_ij):
 *   dP_ij = dO_i · v_j,    dS_ij = P_ij (dP_ij − D_i)
 *   dq_i = σ Σ_j dS_ij k_j,   dk_j = σ Σ_i dS_ij q_i,   dv_j = Σ_i P_ij dO_i     (summed over the group's heads)
 * </pre>
 * Layout: q and O are [B·S, H·d], k and v [B·S, KV·d], row b·S + s. Forward keeps the log-sum-exp of each row
 * (B·H·S floats) instead of P, and backward recomputes P from it, so memory stays linear in S.
 * {@link #forward}/{@link #backward} are the fast path (Vector API over keys and head_dim, (b, h) pairs over
 * threads); {@link #forwardReference}/{@link #backwardReference} the scalar statement in double.
 */
public final class CausalAttention {
    private final int batch, seq, heads, kvHeads, headDim;
    private final float scale;

    public CausalAttention(int batch, int seq, int heads, int kvHeads, int headDim) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of kv heads " + kvHeads);
        }
        this.batch = batch;
        this.seq = seq;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.scale = (float) (1.0 / Math.sqrt(headDim));
    }

    /** O for q, k, v; writes the rows' log-sum-exp [B·H·S] to {@code lse} when it is not null. */
    public void forward(float[] q, float[] k, float[] v, float[] out, float[] lse) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        Parallel.forRange(batch * heads, 1, (p0, p1) -> {
            float[] kT = new float[d * seq];
            float[] sc = new float[seq];
            for (int pair = p0; pair < p1; pair++) {
                int b = pair / heads, h = pair % heads, g = h / rep;
                transpose(k, b * seq, kw, g * d, kT);
                for (int i = 0; i < seq; i++) {
                    int qo = (b * seq + i) * qw + h * d;
                    int n = i + 1;
                    java.util.Arrays.fill(sc, 0, n, 0f);
                    for (int dd = 0; dd < d; dd++) {
                        Vec.axpy(n, q[qo + dd], kT, dd * seq, sc, 0);
                    }
                    float m = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        sc[j] *= scale;
                        m = Math.max(m, sc[j]);
                    }
                    float sum = 0f;
                    for (int j = 0; j < n; j++) {
                        sc[j] = (float) Math.exp(sc[j] - m);
                        sum += sc[j];
                    }
                    float invSum = 1f / sum;
                    java.util.Arrays.fill(out, qo, qo + d, 0f);
                    for (int j = 0; j < n; j++) {
                        Vec.axpy(d, sc[j] * invSum, v, (b * seq + j) * kw + g * d, out, qo);
                    }
                    if (lse != null) lse[pair * seq + i] = m + (float) Math.log(sum);
                }
            }
        });
    }

    /** dq, dk, dv (overwritten) from dO, the forward's inputs, its output O and its log-sum-exp. */
    public void backward(float[] dOut, float[] q, float[] k, float[] v, float[] out, float[] lse,
                         float[] dq, float[] dk, float[] dv) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        float[][] dkHead = new float[batch * heads][];
        float[][] dvHead = new float[batch * heads][];
        Parallel.forRange(batch * heads, 1, (p0, p1) -> {
            float[] kT = new float[d * seq], vT = new float[d * seq];
            float[] p = new float[seq], dp = new float[seq];
            for (int pair = p0; pair < p1; pair++) {
                int b = pair / heads, h = pair % heads, g = h / rep;
                transpose(k, b * seq, kw, g * d, kT);
                transpose(v, b * seq, kw, g * d, vT);
                float[] dkh = new float[seq * d], dvh = new float[seq * d];
                for (int i = 0; i < seq; i++) {
                    int qo = (b * seq + i) * qw + h * d;
                    int n = i + 1;
                    java.util.Arrays.fill(p, 0, n, 0f);
                    java.util.Arrays.fill(dp, 0, n, 0f);
                    for (int dd = 0; dd < d; dd++) {
                        Vec.axpy(n, q[qo + dd], kT, dd * seq, p, 0);
                        Vec.axpy(n, dOut[qo + dd], vT, dd * seq, dp, 0);
                    }
                    float l = lse[pair * seq + i];
                    float di = Vec.dot(d, dOut, qo, out, qo);
                    java.util.Arrays.fill(dq, qo, qo + d, 0f);
                    for (int j = 0; j < n; j++) {
                        float pj = (float) Math.exp(p[j] * scale - l);
                        float ds = pj * (dp[j] - di) * scale;
                        int ko = (b * seq + j) * kw + g * d;
                        Vec.axpy(d, ds, k, ko, dq, qo);
                        Vec.axpy(d, ds, q, qo, dkh, j * d);
                        Vec.axpy(d, pj, dOut, qo, dvh, j * d);
                    }
                }
                dkHead[pair] = dkh;
                dvHead[pair] = dvh;
            }
        });
        Parallel.forRange(batch * kvHeads, 1, (g0, g1) -> {
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

    /** The probabilities P [B·H, S, S] of the definition, in double. */
    private double[] probabilities(double[] q, double[] k) {
        int d = headDim, qw = heads * d, kw = kvHeads * d, rep = heads / kvHeads;
        double[] p = new double[batch * heads * seq * seq];
        double sigma = 1 / Math.sqrt(d);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / rep, base = (b * heads + h) * seq * seq;
                for (int i = 0; i < seq; i++) {
                    double m = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double s = 0;
                        for (int dd = 0; dd < d; dd++) {
                            s += q[(b * seq + i) * qw + h * d + dd] * k[(b * seq + j) * kw + g * d + dd];
                        }
                        p[base + i * seq + j] = s * sigma;
                        m = Math.max(m, s * sigma);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) sum += (p[base + i * seq + j] = Math.exp(p[base + i * seq + j] - m));
                    for (int j = 0; j <= i; j++) p[base + i * seq + j] /= sum;
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
