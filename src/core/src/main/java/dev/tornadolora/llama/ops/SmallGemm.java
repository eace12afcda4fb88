package dev.tornadolora.llama.ops;


/**
 * The register-blocked product the attention of one head runs on (single-threaded: attention parallelises over
 * heads). For a block of up to 4 rows of C:
 * <pre>
 *   C[r][j] += Σ_{k0 ≤ kk &lt; k1} A(r, kk) · B[kk][j],      A(r, kk) = a[aOff + r·aRow + kk·aK],
 *                                                          B[kk][j] = b[bOff + kk·ldb + j],  C[r][j] = c[cOff + r·ldc + j]
 * </pre>
 * Strides express transposes (Kᵀ, dSᵀ) without copies. The micro-kernel keeps 4 rows × 2 vectors of C in
 * registers over the whole k range (Vector API); without it, rows are scalar axpy loops.
 */
final class SmallGemm {
    private SmallGemm() {}

    /** Rows [r0, r0 + rows) of C, rows ≤ 4, columns [0, n). */
    static void rowBlock(int r0, int rows, int n, int k0, int k1, float[] a, int aOff, int aRow, int aK,
                         float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (rows == 4 && Vec.SIMD) {
            VecSimd.block4(r0, n, k0, k1, a, aOff, aRow, aK, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        for (int r = r0; r < r0 + rows; r++) {
            int co = cOff + r * ldc;
            for (int kk = k0; kk < k1; kk++) {
                Vec.axpy(n, a[aOff + r * aRow + kk * aK], b, bOff + kk * ldb, c, co);
            }
        }
    }
}
