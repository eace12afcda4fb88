package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import static dev.tornadolora.kernels.jvm.Gemm.F;
import static dev.tornadolora.kernels.jvm.Gemm.L;

/**
 * The rank-r products of LoRA, whose result is at most {@link #MAX_WIDTH} columns wide (r ≤ 2 vectors), without
 * packing. {@link Gemm} packs its left operand and fills right panels {@link Gemm#NRL} wide: for a result 16 columns
 * wide that packing costs as much as the arithmetic, and half of every panel is zeros, so these products ran at a
 * tenth of the big ones' rate. Here each operand is read where it lies:
 * <pre>
 *   {@link #rowDots}:          C[m × r]  = s·X·Yᵀ         X [m × k], Y [r × k] row-major: dot products along k
 *                              (h = (x⊙m)·Aᵀ, dh = s·dy·B with Bᵀ)
 *   {@link #transposedTimes}:  C[m × r] += s·(A⊙M)ᵀ·Y     A [k × m], Y [k × r] row-major: rows of Y scaled by
 *                              broadcasts of A (dB += s·dyᵀ·h, dAᵀ = (x⊙m)ᵀ·dh)
 * </pre>
 * Each output element is summed by one thread in a fixed order (k ascending per lane, then {@link Gemv#sumLanes}
 * for the dots), so results do not depend on the thread count.
 */
final class NarrowGemm {
    /** Widest result these kernels take: two vectors. */
    static final int MAX_WIDTH = 2 * L;
    /** Rows of C per register tile of {@link #transposedTimes}. */
    private static final int MR = 12;
    /** Rows × columns of C per register tile of {@link #rowDots}. */
    private static final int DR = 4;

    private NarrowGemm() {}

    /**
     * C[i·r + j] = s · Σ_k X[i·ldx + k]·Y[j·ldy + k] for i &lt; m, j &lt; r. Tiles of 4 rows × 4 columns of C, 16
     * vector accumulators along k, then each one's lanes summed and the last k % L products added one by one; a
     * ragged edge repeats the last row or column in the registers and stores only the valid ones.
     */
    static void rowDots(Parallel par, int m, int r, int k, float[] x, int ldx, float[] y, int ldy, float s, float[] c) {
        int blocks = (m + DR - 1) / DR;
        par.range(blocks, 8, (b0, b1) -> {
            float[] tile = new float[DR * DR];
            for (int b = b0; b < b1; b++) {
                int i0 = b * DR;
                for (int j0 = 0; j0 < r; j0 += DR) {
                    dotTile(m, r, k, x, ldx, y, ldy, i0, j0, tile);
                    for (int i = i0; i < Math.min(m, i0 + DR); i++) {
                        for (int j = j0; j < Math.min(r, j0 + DR); j++) {
                            c[i * r + j] = s * tile[(i - i0) * DR + j - j0];
                        }
                    }
                }
            }
        });
    }

    /** The 4 × 4 dot products of rows i0.. of X with rows j0.. of Y (clamped to the last) into tile. */
    private static void dotTile(int m, int r, int k, float[] x, int ldx, float[] y, int ldy, int i0, int j0,
                                float[] tile) {
        int x0 = Math.min(i0, m - 1) * ldx, x1 = Math.min(i0 + 1, m - 1) * ldx;
        int x2 = Math.min(i0 + 2, m - 1) * ldx, x3 = Math.min(i0 + 3, m - 1) * ldx;
        int y0 = Math.min(j0, r - 1) * ldy, y1 = Math.min(j0 + 1, r - 1) * ldy;
        int y2 = Math.min(j0 + 2, r - 1) * ldy, y3 = Math.min(j0 + 3, r - 1) * ldy;
        FloatVector z = FloatVector.zero(F);
        FloatVector s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z;
        FloatVector s20 = z, s21 = z, s22 = z, s23 = z, s30 = z, s31 = z, s32 = z, s33 = z;
        int kv = k - k % L;
        for (int kk = 0; kk < kv; kk += L) {
            FloatVector w0 = FloatVector.fromArray(F, y, y0 + kk), w1 = FloatVector.fromArray(F, y, y1 + kk);
            FloatVector w2 = FloatVector.fromArray(F, y, y2 + kk), w3 = FloatVector.fromArray(F, y, y3 + kk);
            FloatVector a = FloatVector.fromArray(F, x, x0 + kk);
            s00 = a.fma(w0, s00); s01 = a.fma(w1, s01); s02 = a.fma(w2, s02); s03 = a.fma(w3, s03);
            a = FloatVector.fromArray(F, x, x1 + kk);
            s10 = a.fma(w0, s10); s11 = a.fma(w1, s11); s12 = a.fma(w2, s12); s13 = a.fma(w3, s13);
            a = FloatVector.fromArray(F, x, x2 + kk);
            s20 = a.fma(w0, s20); s21 = a.fma(w1, s21); s22 = a.fma(w2, s22); s23 = a.fma(w3, s23);
            a = FloatVector.fromArray(F, x, x3 + kk);
            s30 = a.fma(w0, s30); s31 = a.fma(w1, s31); s32 = a.fma(w2, s32); s33 = a.fma(w3, s33);
        }
        tile[0] = Gemv.sumLanes(s00); tile[1] = Gemv.sumLanes(s01); tile[2] = Gemv.sumLanes(s02);
        tile[3] = Gemv.sumLanes(s03); tile[4] = Gemv.sumLanes(s10); tile[5] = Gemv.sumLanes(s11);
        tile[6] = Gemv.sumLanes(s12); tile[7] = Gemv.sumLanes(s13); tile[8] = Gemv.sumLanes(s20);
        tile[9] = Gemv.sumLanes(s21); tile[10] = Gemv.sumLanes(s22); tile[11] = Gemv.sumLanes(s23);
        tile[12] = Gemv.sumLanes(s30); tile[13] = Gemv.sumLanes(s31); tile[14] = Gemv.sumLanes(s32);
        tile[15] = Gemv.sumLanes(s33);
        if (kv < k) {
            int[] xs = {x0, x1, x2, x3}, ys = {y0, y1, y2, y3};
            for (int i = 0; i < DR; i++) {
                for (int j = 0; j < DR; j++) {
                    float t = tile[i * DR + j];
                    for (int kk = kv; kk < k; kk++) {
                        t += x[xs[i] + kk] * y[ys[j] + kk];
                    }
                    tile[i * DR + j] = t;
                }
            }
        }
    }

    /**
     * C[i·r + j] += s · Σ_k A[k·lda + i]·M[k·lda + i]·Y[k·r + j] for i &lt; m, j &lt; r ≤ {@link #MAX_WIDTH} (M = 1
     * when mask is null): A's column i against Y's columns, as rows of Y scaled by broadcasts of A. Tiles of 12 rows
     * of C by one or two vectors; a row of A's 12 elements is contiguous, so the tile reads one stream of A and one
     * of Y.
     */
    static void transposedTimes(Parallel par, int m, int r, int k, float[] a, float[] mask, int lda, float s,
                                float[] y, float[] c) {
        if (r > MAX_WIDTH) {
            throw new IllegalArgumentException("width " + r + " over " + MAX_WIDTH);
        }
        int blocks = (m + MR - 1) / MR;
        par.range(blocks, 2, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int i0 = b * MR;
                if (i0 + MR > m) {
                    transposedRows(i0, m, r, k, a, mask, lda, s, y, c);
                } else if (r <= L && mask == null) {
                    broadcastTile(i0, r, k, a, lda, s, y, c);
                } else {
                    transposedRows(i0, i0 + MR, r, k, a, mask, lda, s, y, c);
                }
            }
        });
    }

    /** The 12-row, one-vector tile of {@link #transposedTimes} (r ≤ L, no mask): 12 FMAs per row of Y. */
    private static void broadcastTile(int i0, int r, int k, float[] a, int lda, float s, float[] y, float[] c) {
        VectorMask<Float> cols = F.indexInRange(0, r);
        FloatVector z = FloatVector.zero(F);
        FloatVector c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z, c8 = z, c9 = z, c10 = z, c11 = z;
        for (int kk = 0, e = i0, f = 0; kk < k; kk++, e += lda, f += r) {
            FloatVector w = FloatVector.fromArray(F, y, f, cols);
            c0 = w.fma(FloatVector.broadcast(F, a[e]), c0);
            c1 = w.fma(FloatVector.broadcast(F, a[e + 1]), c1);
            c2 = w.fma(FloatVector.broadcast(F, a[e + 2]), c2);
            c3 = w.fma(FloatVector.broadcast(F, a[e + 3]), c3);
            c4 = w.fma(FloatVector.broadcast(F, a[e + 4]), c4);
            c5 = w.fma(FloatVector.broadcast(F, a[e + 5]), c5);
            c6 = w.fma(FloatVector.broadcast(F, a[e + 6]), c6);
            c7 = w.fma(FloatVector.broadcast(F, a[e + 7]), c7);
            c8 = w.fma(FloatVector.broadcast(F, a[e + 8]), c8);
            c9 = w.fma(FloatVector.broadcast(F, a[e + 9]), c9);
            c10 = w.fma(FloatVector.broadcast(F, a[e + 10]), c10);
            c11 = w.fma(FloatVector.broadcast(F, a[e + 11]), c11);
        }
        int o = i0 * r;
        addRow(c, o, s, c0, cols); addRow(c, o += r, s, c1, cols); addRow(c, o += r, s, c2, cols);
        addRow(c, o += r, s, c3, cols); addRow(c, o += r, s, c4, cols); addRow(c, o += r, s, c5, cols);
        addRow(c, o += r, s, c6, cols); addRow(c, o += r, s, c7, cols); addRow(c, o += r, s, c8, cols);
        addRow(c, o += r, s, c9, cols); addRow(c, o += r, s, c10, cols); addRow(c, o + r, s, c11, cols);
    }

    private static void addRow(float[] c, int o, float s, FloatVector v, VectorMask<Float> cols) {
        v.mul(s).add(FloatVector.fromArray(F, c, o, cols)).intoArray(c, o, cols);
    }

    /**
     * Rows [i0, i1) of {@link #transposedTimes} one at a time, each row of C's one or two vectors over all k: the
     * ragged edge, a mask, and r in (L, 2L]. Adds in the same order as {@link #broadcastTile}.
     */
    private static void transposedRows(int i0, int i1, int r, int k, float[] a, float[] mask, int lda, float s,
                                       float[] y, float[] c) {
        VectorMask<Float> lo = F.indexInRange(0, r), hi = F.indexInRange(L, r);
        boolean two = r > L;
        for (int i = i0; i < i1; i++) {
            FloatVector v0 = FloatVector.zero(F), v1 = v0;
            for (int kk = 0, e = i, f = 0; kk < k; kk++, e += lda, f += r) {
                float ai = mask == null ? a[e] : a[e] * mask[e];
                FloatVector av = FloatVector.broadcast(F, ai);
                v0 = FloatVector.fromArray(F, y, f, lo).fma(av, v0);
                if (two) {
                    v1 = FloatVector.fromArray(F, y, f + L, hi).fma(av, v1);
                }
            }
            addRow(c, i * r, s, v0, lo);
            if (two) {
                addRow(c, i * r + L, s, v1, hi);
            }
        }
    }
}
