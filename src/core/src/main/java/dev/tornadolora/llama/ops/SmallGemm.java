package dev.tornadolora.llama.ops;

import jdk.incubator.vector.FloatVector;

import static dev.tornadolora.llama.ops.Vec.F;
import static dev.tornadolora.llama.ops.Vec.L;

/**
 * The register-blocked product the attention of one head runs on (single-threaded: attention parallelises over
 * heads). For a block of up to 4 rows of C:
 * <pre>
 *   C[r][j] += Σ_{k0 ≤ kk &lt; k1} A(r, kk) · B[kk][j],      A(r, kk) = a[aOff + r·aRow + kk·aK],
 *                                                          B[kk][j] = b[bOff + kk·ldb + j],  C[r][j] = c[cOff + r·ldc + j]
 * </pre>
 * Strides express transposes (Kᵀ, dSᵀ) without copies. The micro-kernel keeps 4 rows × 2 vectors of C in
 * registers over the whole k range.
 */
final class SmallGemm {
    private SmallGemm() {}

    /** Rows [r0, r0 + rows) of C, rows ≤ 4, columns [0, n). */
    static void rowBlock(int r0, int rows, int n, int k0, int k1, float[] a, int aOff, int aRow, int aK,
                         float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (rows == 4) {
            block4(r0, n, k0, k1, a, aOff, aRow, aK, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        for (int r = r0; r < r0 + rows; r++) {
            int co = cOff + r * ldc;
            for (int kk = k0; kk < k1; kk++) {
                Vec.axpy(n, a[aOff + r * aRow + kk * aK], b, bOff + kk * ldb, c, co);
            }
        }
    }

    private static void block4(int r0, int n, int k0, int k1, float[] a, int aOff, int aRow, int aK,
                               float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        int a0 = aOff + r0 * aRow, a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow;
        int c0 = cOff + r0 * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        int j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            FloatVector s00 = FloatVector.fromArray(F, c, c0 + j), s01 = FloatVector.fromArray(F, c, c0 + j + L);
            FloatVector s10 = FloatVector.fromArray(F, c, c1 + j), s11 = FloatVector.fromArray(F, c, c1 + j + L);
            FloatVector s20 = FloatVector.fromArray(F, c, c2 + j), s21 = FloatVector.fromArray(F, c, c2 + j + L);
            FloatVector s30 = FloatVector.fromArray(F, c, c3 + j), s31 = FloatVector.fromArray(F, c, c3 + j + L);
            for (int kk = k0; kk < k1; kk++) {
                int bo = bOff + kk * ldb + j, ak = kk * aK;
                FloatVector b0 = FloatVector.fromArray(F, b, bo), b1 = FloatVector.fromArray(F, b, bo + L);
                FloatVector x0 = FloatVector.broadcast(F, a[a0 + ak]);
                s00 = b0.fma(x0, s00);
                s01 = b1.fma(x0, s01);
                FloatVector x1 = FloatVector.broadcast(F, a[a1 + ak]);
                s10 = b0.fma(x1, s10);
                s11 = b1.fma(x1, s11);
                FloatVector x2 = FloatVector.broadcast(F, a[a2 + ak]);
                s20 = b0.fma(x2, s20);
                s21 = b1.fma(x2, s21);
                FloatVector x3 = FloatVector.broadcast(F, a[a3 + ak]);
                s30 = b0.fma(x3, s30);
                s31 = b1.fma(x3, s31);
            }
            s00.intoArray(c, c0 + j);
            s01.intoArray(c, c0 + j + L);
            s10.intoArray(c, c1 + j);
            s11.intoArray(c, c1 + j + L);
            s20.intoArray(c, c2 + j);
            s21.intoArray(c, c2 + j + L);
            s30.intoArray(c, c3 + j);
            s31.intoArray(c, c3 + j + L);
        }
        for (; j + L <= n; j += L) {
            FloatVector s0 = FloatVector.fromArray(F, c, c0 + j), s1 = FloatVector.fromArray(F, c, c1 + j);
            FloatVector s2 = FloatVector.fromArray(F, c, c2 + j), s3 = FloatVector.fromArray(F, c, c3 + j);
            for (int kk = k0; kk < k1; kk++) {
                FloatVector bv = FloatVector.fromArray(F, b, bOff + kk * ldb + j);
                int ak = kk * aK;
                s0 = bv.fma(FloatVector.broadcast(F, a[a0 + ak]), s0);
                s1 = bv.fma(FloatVector.broadcast(F, a[a1 + ak]), s1);
                s2 = bv.fma(FloatVector.broadcast(F, a[a2 + ak]), s2);
                s3 = bv.fma(FloatVector.broadcast(F, a[a3 + ak]), s3);
            }
            s0.intoArray(c, c0 + j);
            s1.intoArray(c, c1 + j);
            s2.intoArray(c, c2 + j);
            s3.intoArray(c, c3 + j);
        }
        for (; j < n; j++) {
            float s0 = c[c0 + j], s1 = c[c1 + j], s2 = c[c2 + j], s3 = c[c3 + j];
            for (int kk = k0; kk < k1; kk++) {
                float bv = b[bOff + kk * ldb + j];
                int ak = kk * aK;
                s0 = Math.fma(a[a0 + ak], bv, s0);
                s1 = Math.fma(a[a1 + ak], bv, s1);
                s2 = Math.fma(a[a2 + ak], bv, s2);
                s3 = Math.fma(a[a3 + ak], bv, s3);
            }
            c[c0 + j] = s0;
            c[c1 + j] = s1;
            c[c2 + j] = s2;
            c[c3 + j] = s3;
        }
    }
}
