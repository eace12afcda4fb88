package dev.tornadolora.kernels.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The packed, register-tiled matrix product every large JVM kernel runs on:
 *
 * <pre>
 *   C[M×N] += Σ_terms A_t[M×K_t] · B_t[K_t×N]            (or  C += (Σ_t A_t·B_t) ⊙ G  with a multiplier G)
 * </pre>
 *
 * Several terms share one pass over C, which is how the LoRA update rides in the base matmul's epilogue:
 * {@code y += x·Wᵀ + (s·h)·Bᵀ} is two terms whose products land in the same register tile.
 *
 * <p>Schedule (GotoBLAS-style): A, the left operand, is packed once per call into row blocks of {@link #MR}
 * rows, interleaved by k, so that a micro-kernel step reads MR consecutive floats to broadcast. B, the right
 * operand, is delivered by a {@link Right} as panels of {@link #NRL} columns by at most {@link #KB} rows, which
 * is where a quantized weight gets decoded: once per panel, then reused by every row block of A. The
 * micro-kernel keeps an MR × NR-vector tile of C in registers for a whole K block and adds it to C once.
 * Threads own disjoint column panels of C (or disjoint row blocks when C has few columns), so nothing races.
 */
final class Gemm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Rows of C in a micro-tile. */
    static final int MR = 6;
    /** Vectors of C per micro-tile row; even, so a panel is whole NF4 decoding units. */
    static final int NR = 4;
    /** Columns of a B panel. */
    static final int NRL = NR * L;
    /** Rows of a B panel (K block); a multiple of 2L so NF4 panels start on whole units. */
    static final int KB = roundUp(Integer.getInteger("tornadolora.kb", 256), 2 * L);
    /** Panels that one thread sweeps per K block while the packed A block stays in cache. */
    static final int PANEL_GROUP = Integer.getInteger("tornadolora.panelGroup", 8);
    /** Rows of A packed at a time, bounding the packed copy for very many tokens. */
    static final int MAX_CHUNK_ROWS = roundUp(Integer.getInteger("tornadolora.chunkRows", 1024), MR);

    private static final ThreadLocal<float[]> PANEL = ThreadLocal.withInitial(() -> new float[KB * NRL]);
    private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[MR * NRL]);
    private static final ThreadLocal<float[]> PACKED = ThreadLocal.withInitial(() -> new float[0]);

    private Gemm() {}

    /**
     * The left operand: element (row, k) = scale · a[off + row·rowStride + k·kStride], times mul at the same
     * index when mul is not null (the dropout multiplier). Strides express transposes without copies.
     */
    record Left(float[] a, int off, int rowStride, int kStride, float scale, float[] mul) {
        /** A row-major [M × rowLen] matrix. */
        static Left rows(float[] a, int rowLen) {
            return new Left(a, 0, rowLen, 1, 1f, null);
        }

        /** The transpose of a row-major [K × rowLen] matrix: element (row, k) = a[k·rowLen + row]. */
        static Left transposed(float[] a, int rowLen) {
            return new Left(a, 0, 1, rowLen, 1f, null);
        }

        Left scaled(float s) {
            return new Left(a, off, rowStride, kStride, s, mul);
        }

        Left times(float[] multiplier) {
            return new Left(a, off, rowStride, kStride, scale, multiplier);
        }

        float at(int row, int k) {
            int i = off + row * rowStride + k * kStride;
            return mul == null ? scale * a[i] : scale * a[i] * mul[i];
        }
    }

    /** The right operand B [K × N], delivered panel by panel. */
    interface Right {
        /**
         * Writes B[k0 + kk][n0 + nn] to {@code dst[kk·NRL + nn]} for kk &lt; kLen, nn &lt; nLen, and zeros for
         * nn in [nLen, NRL). Called from several threads at once.
         */
        void fill(int k0, int kLen, int n0, int nLen, float[] dst);
    }

    /** One product A·B with inner dimension k. */
    record Term(Left a, Right b, int k) {}

    /** C += Σ A·B over the terms; C is row-major with row stride ldc. */
    static void multiplyAdd(int m, int n, float[] c, int ldc, Term... terms) {
        multiplyAdd(m, n, c, ldc, null, terms);
    }

    /** C += (Σ A·B) ⊙ G (G indexed like C), or plain C += Σ A·B when g is null. */
    static void multiplyAdd(int m, int n, float[] c, int ldc, float[] g, Term... terms) {
        if (m == 0 || n == 0) {
            return;
        }
        int kTotal = 0;
        for (Term t : terms) {
            kTotal += t.k();
        }
        int chunks = (m + MAX_CHUNK_ROWS - 1) / MAX_CHUNK_ROWS;
        int chunkRows = roundUp((m + chunks - 1) / chunks, MR);
        for (int m0 = 0; m0 < m; m0 += chunkRows) {
            int rows = Math.min(chunkRows, m - m0);
            float[] packed = pack(terms, m0, rows, kTotal);
            multiplyChunk(m0, rows, n, c, ldc, g, terms, packed, kTotal);
        }
    }

    private static float[] pack(Term[] terms, int m0, int rows, int kTotal) {
        int blocks = (rows + MR - 1) / MR;
        float[] packed = PACKED.get();
        if (packed.length < blocks * kTotal * MR) {
            packed = new float[blocks * kTotal * MR];
            PACKED.set(packed);
        }
        float[] dst = packed;
        Parallel.forRange(blocks, 1, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int kg = 0;
                for (Term t : terms) {
                    packBlock(t.a(), m0 + b * MR, Math.min(MR, rows - b * MR), t.k(), dst, (b * kTotal + kg) * MR);
                    kg += t.k();
                }
            }
        });
        return packed;
    }

    /** dst[k·MR + r] = A(row0 + r, k); rows past the end are zero. */
    private static void packBlock(Left a, int row0, int rows, int k, float[] dst, int off) {
        for (int r = 0; r < MR; r++) {
            if (r >= rows) {
                for (int kk = 0; kk < k; kk++) {
                    dst[off + kk * MR + r] = 0f;
                }
            } else if (a.mul() == null && a.kStride() == 1 && a.scale() == 1f) {
                float[] src = a.a();
                int s = a.off() + (row0 + r) * a.rowStride();
                for (int kk = 0; kk < k; kk++) {
                    dst[off + kk * MR + r] = src[s + kk];
                }
            } else {
                for (int kk = 0; kk < k; kk++) {
                    dst[off + kk * MR + r] = a.at(row0 + r, kk);
                }
            }
        }
    }

    private static void multiplyChunk(int m0, int rows, int n, float[] c, int ldc, float[] g, Term[] terms,
                                      float[] packed, int kTotal) {
        int blocks = (rows + MR - 1) / MR;
        int panels = (n + NRL - 1) / NRL;
        if (panels >= Parallel.threads() || panels >= blocks) {
            Parallel.forRange(panels, 1, (p0, p1) -> {
                for (int g0 = p0; g0 < p1; g0 += PANEL_GROUP) {
                    sweep(m0, rows, 0, blocks, g0, Math.min(p1, g0 + PANEL_GROUP), n, c, ldc, g, terms, packed, kTotal);
                }
            });
        } else {
            Parallel.forRange(blocks, 1, (b0, b1) ->
                    sweep(m0, rows, b0, b1, 0, panels, n, c, ldc, g, terms, packed, kTotal));
        }
    }

    /** Row blocks [b0, b1) × panels [p0, p1): per K block, fill each panel once and run it past every row block. */
    private static void sweep(int m0, int rows, int b0, int b1, int p0, int p1, int n, float[] c, int ldc,
                              float[] g, Term[] terms, float[] packed, int kTotal) {
        float[] panel = PANEL.get();
        float[] tile = TILE.get();
        int kg = 0;
        for (Term t : terms) {
            for (int k0 = 0; k0 < t.k(); k0 += KB) {
                int kLen = Math.min(KB, t.k() - k0);
                for (int p = p0; p < p1; p++) {
                    int n0 = p * NRL;
                    int cols = Math.min(NRL, n - n0);
                    t.b().fill(k0, kLen, n0, cols, panel);
                    for (int b = b0; b < b1; b++) {
                        int row0 = m0 + b * MR;
                        kernel(packed, (b * kTotal + kg + k0) * MR, panel, kLen,
                                c, ldc, g, row0, Math.min(MR, m0 + rows - row0), n0, cols, tile);
                    }
                }
            }
            kg += t.k();
        }
    }

    /** The 6 × 4-vector register tile: C[row0.., n0..] += Σ_k A(k) ⊗ B(k) over one K block. */
    private static void kernel(float[] ap, int aOff, float[] bp, int kLen, float[] c, int ldc, float[] g,
                               int row0, int rows, int n0, int cols, float[] tile) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c01 = z, c02 = z, c03 = z;
        FloatVector c10 = z, c11 = z, c12 = z, c13 = z;
        FloatVector c20 = z, c21 = z, c22 = z, c23 = z;
        FloatVector c30 = z, c31 = z, c32 = z, c33 = z;
        FloatVector c40 = z, c41 = z, c42 = z, c43 = z;
        FloatVector c50 = z, c51 = z, c52 = z, c53 = z;
        for (int k = 0, a = aOff, b = 0; k < kLen; k++, a += MR, b += NRL) {
            FloatVector b0 = FloatVector.fromArray(F, bp, b);
            FloatVector b1 = FloatVector.fromArray(F, bp, b + L);
            FloatVector b2 = FloatVector.fromArray(F, bp, b + 2 * L);
            FloatVector b3 = FloatVector.fromArray(F, bp, b + 3 * L);
            FloatVector x = FloatVector.broadcast(F, ap[a]);
            c00 = b0.fma(x, c00); c01 = b1.fma(x, c01); c02 = b2.fma(x, c02); c03 = b3.fma(x, c03);
            x = FloatVector.broadcast(F, ap[a + 1]);
            c10 = b0.fma(x, c10); c11 = b1.fma(x, c11); c12 = b2.fma(x, c12); c13 = b3.fma(x, c13);
            x = FloatVector.broadcast(F, ap[a + 2]);
            c20 = b0.fma(x, c20); c21 = b1.fma(x, c21); c22 = b2.fma(x, c22); c23 = b3.fma(x, c23);
            x = FloatVector.broadcast(F, ap[a + 3]);
            c30 = b0.fma(x, c30); c31 = b1.fma(x, c31); c32 = b2.fma(x, c32); c33 = b3.fma(x, c33);
            x = FloatVector.broadcast(F, ap[a + 4]);
            c40 = b0.fma(x, c40); c41 = b1.fma(x, c41); c42 = b2.fma(x, c42); c43 = b3.fma(x, c43);
            x = FloatVector.broadcast(F, ap[a + 5]);
            c50 = b0.fma(x, c50); c51 = b1.fma(x, c51); c52 = b2.fma(x, c52); c53 = b3.fma(x, c53);
        }
        if (rows == MR && cols == NRL) {
            int o = row0 * ldc + n0;
            addRow(c, g, o, c00, c01, c02, c03);
            addRow(c, g, o + ldc, c10, c11, c12, c13);
            addRow(c, g, o + 2 * ldc, c20, c21, c22, c23);
            addRow(c, g, o + 3 * ldc, c30, c31, c32, c33);
            addRow(c, g, o + 4 * ldc, c40, c41, c42, c43);
            addRow(c, g, o + 5 * ldc, c50, c51, c52, c53);
        } else {
            storeRow(tile, 0, c00, c01, c02, c03);
            storeRow(tile, NRL, c10, c11, c12, c13);
            storeRow(tile, 2 * NRL, c20, c21, c22, c23);
            storeRow(tile, 3 * NRL, c30, c31, c32, c33);
            storeRow(tile, 4 * NRL, c40, c41, c42, c43);
            storeRow(tile, 5 * NRL, c50, c51, c52, c53);
            for (int r = 0; r < rows; r++) {
                int o = (row0 + r) * ldc + n0;
                for (int j = 0; j < cols; j++) {
                    float v = tile[r * NRL + j];
                    c[o + j] += g == null ? v : v * g[o + j];
                }
            }
        }
    }

    private static void addRow(float[] c, float[] g, int o, FloatVector v0, FloatVector v1, FloatVector v2,
                               FloatVector v3) {
        if (g != null) {
            v0 = v0.mul(FloatVector.fromArray(F, g, o));
            v1 = v1.mul(FloatVector.fromArray(F, g, o + L));
            v2 = v2.mul(FloatVector.fromArray(F, g, o + 2 * L));
            v3 = v3.mul(FloatVector.fromArray(F, g, o + 3 * L));
        }
        v0.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
        v1.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        v2.add(FloatVector.fromArray(F, c, o + 2 * L)).intoArray(c, o + 2 * L);
        v3.add(FloatVector.fromArray(F, c, o + 3 * L)).intoArray(c, o + 3 * L);
    }

    private static void storeRow(float[] t, int o, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(t, o);
        v1.intoArray(t, o + L);
        v2.intoArray(t, o + 2 * L);
        v3.intoArray(t, o + 3 * L);
    }

    static int roundUp(int v, int multiple) {
        return (v + multiple - 1) / multiple * multiple;
    }
}
