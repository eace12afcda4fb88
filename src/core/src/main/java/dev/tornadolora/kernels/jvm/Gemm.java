package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.kernels.jvm.Workspaces.Workspace;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
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
 * micro-kernel keeps an MR × NR-vector tile of C in registers for a whole K block and adds it to C once; a row
 * block shorter than MR (the last of 64 rows: 4) runs in 4-row tiles, whose elements see the same FMAs in the same
 * order, so a row's result does not depend on the rows beside it (the fused loss's chunks rely on it).
 * Threads own disjoint column panels of C (or disjoint row blocks when C has few columns), so nothing races.
 */
final class Gemm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Rows of C in a micro-tile. */
    static final int MR = 12;
    /** Vectors of C per micro-tile row; even, so a panel is whole NF4 decoding units. */
    static final int NR = 2;
    /** Columns of a B panel. */
    static final int NRL = NR * L;
    /** Rows of a B panel (K block); a multiple of 2L so NF4 panels start on whole units. */
    static final int KB = roundUp(512, 2 * L);
    /** Panels that one thread sweeps per K block while the packed A block stays in cache. */
    static final int PANEL_GROUP = 8;
    /** Rows of A packed at a time, bounding the packed copy for very many tokens. */
    static final int MAX_CHUNK_ROWS = roundUp(1024, MR);

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
         * nn in [nLen, NRL), with {@code scratch} the calling worker's. Called from several threads at once.
         */
        void fill(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch);

        /**
         * Non-null when B is held packed already: panel p is {@code packed()[p·K·NRL ..]}, k-major, NRL wide,
         * zero-padded, and the micro-kernel reads it in place instead of calling {@link #fill}.
         */
        default float[] packed() {
            return null;
        }

        /**
         * B as the row-major fp32 array it is (B[k][n] = {@code rowMajor()[k·rowMajorStride() + n]}, no multiplier),
         * or null: a sweep then copies the next panel inside the micro-kernel that runs on the current one, so the
         * copy's loads from memory overlap the FMAs instead of stalling a fill of their own (the backward's dx = dy·W
         * over a 64-token chunk of lm_head spent a third of its time filling W's panels).
         */
        default float[] rowMajor() {
            return null;
        }

        /** The row stride of {@link #rowMajor()}. */
        default int rowMajorStride() {
            return 0;
        }

        /**
         * Whether {@link #fillGroup} reads B's rows across several panels at once, which a sweep then prefers (when B
         * is not {@link #rowMajor()}): B is a coded W read natural (the backward's dx = dy·W) or an fp32 one with a
         * multiplier, whose rows are contiguous in memory; filled panel by panel, every K row of a 64- or 128-byte
         * piece is a new page for the prefetchers.
         */
        default boolean fillsGroups() {
            return false;
        }

        /**
         * Panels of the columns [n0, n0 + nLen) (at most {@link #PANEL_GROUP} panels, n0 a panel's start) of the K
         * rows [k0, k0 + kLen), written as {@link #fill} writes one, panel q at {@code dst[q·KB·NRL]}.
         */
        default void fillGroup(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
            throw new UnsupportedOperationException("fillGroup");
        }
    }

    /** One product A·B with inner dimension k. */
    record Term(Left a, Right b, int k) {}

    /** C += Σ A·B on a backend's threads and scratch. */
    static void multiplyAdd(Workspaces ws, int m, int n, float[] c, int ldc, Term... terms) {
        multiplyAdd(ws, m, n, c, ldc, null, terms);
    }

    /** C += (Σ A·B) ⊙ G (G indexed like C), or plain C += Σ A·B when g is null. */
    static void multiplyAdd(Workspaces ws, int m, int n, float[] c, int ldc, float[] g, Term... terms) {
        if (m == 0 || n == 0) {
            return;
        }
        int kTotal = 0;
        for (Term t : terms) {
            kTotal += t.k();
        }
        int chunks = (m + MAX_CHUNK_ROWS - 1) / MAX_CHUNK_ROWS;
        int chunkRows = roundUp((m + chunks - 1) / chunks, MR);
        float[] packed = ws.takePacked(chunkRows * kTotal);
        try {
            for (int m0 = 0; m0 < m; m0 += chunkRows) {
                int rows = Math.min(chunkRows, m - m0);
                pack(ws.par(), terms, m0, rows, kTotal, packed);
                multiplyChunk(ws, m0, rows, n, c, ldc, g, terms, packed, kTotal);
            }
        } finally {
            ws.givePacked(packed);
        }
    }

    /** Packs rows [m0, m0 + rows) of every term's A into dst, row block by row block (see {@link #packRows}). */
    private static void pack(Parallel par, Term[] terms, int m0, int rows, int kTotal, float[] dst) {
        int blocks = (rows + MR - 1) / MR;
        int kg = 0;
        for (Term t : terms) {
            Left a = t.a();
            int k = t.k(), kOff = kg;
            if (a.rowStride() == 1 && a.mul() == null) {
                // A transpose (dyᵀ, dhᵀ): a row of the source holds element k of every row block, so pack by k.
                par.range(k, 16, (k0, k1) -> packTransposed(a, m0, rows, k0, k1, kTotal, kOff, dst));
            } else {
                par.range(blocks, 1, (b0, b1) -> {
                    for (int b = b0; b < b1; b++) {
                        packRows(a, m0 + b * MR, Math.min(MR, rows - b * MR), k, dst, (b * kTotal + kOff) * MR);
                    }
                });
            }
            kg += k;
        }
    }

    /** Row block b: dst[(b·kTotal + kOff + kk)·MR + r] = A(row0 + r, kk); rows past the end are zero. */
    private static void packRows(Left a, int row0, int rows, int k, float[] dst, int off) {
        if (rows < MR) {
            java.util.Arrays.fill(dst, off, off + k * MR, 0f);
        }
        if (a.kStride() == 1 && rows == MR) {
            // Tokens of x or dy: one gather of the MR rows' elements per k, written in order.
            float[] src = a.a(), mul = a.mul();
            int s = a.off() + row0 * a.rowStride();
            int[] rowOffsets = new int[roundUp(MR, L)];  // the index vector is read whole, masked or not
            for (int r = 0; r < MR; r++) {
                rowOffsets[r] = r * a.rowStride();
            }
            for (int kk = 0, d = off; kk < k; kk++, d += MR) {
                for (int r = 0; r < MR; r += L) {
                    VectorMask<Float> lanes = F.indexInRange(r, MR);
                    FloatVector v = FloatVector.fromArray(F, src, s + kk, rowOffsets, r, lanes);
                    if (mul != null) {
                        v = v.mul(FloatVector.fromArray(F, mul, s + kk, rowOffsets, r, lanes));
                    }
                    v.mul(a.scale()).intoArray(dst, d + r, lanes);
                }
            }
        } else {
            for (int r = 0; r < rows; r++) {
                for (int kk = 0; kk < k; kk++) {
                    dst[off + kk * MR + r] = a.at(row0 + r, kk);
                }
            }
        }
    }

    /** The same for a source whose rows are adjacent (rowStride 1), k in [k0, k1) of every row block. */
    private static void packTransposed(Left a, int m0, int rows, int k0, int k1, int kTotal, int kOff, float[] dst) {
        float[] src = a.a();
        int blocks = (rows + MR - 1) / MR;
        for (int kk = k0; kk < k1; kk++) {
            int s = a.off() + m0 + kk * a.kStride();
            for (int b = 0; b < blocks; b++) {
                int d = (b * kTotal + kOff + kk) * MR;
                int valid = Math.min(MR, rows - b * MR);
                for (int r = 0; r < MR; r += L) {
                    VectorMask<Float> lanes = F.indexInRange(r, valid);
                    FloatVector.fromArray(F, src, s + b * MR + r, lanes).mul(a.scale())
                            .intoArray(dst, d + r, F.indexInRange(r, MR));
                }
            }
        }
    }

    private static void multiplyChunk(Workspaces ws, int m0, int rows, int n, float[] c, int ldc, float[] g, Term[] terms,
                                      float[] packed, int kTotal) {
        int blocks = (rows + MR - 1) / MR;
        int panels = (n + NRL - 1) / NRL;
        if (panels >= ws.par().size() || panels >= blocks) {
            // Grain 1: a thread's share is then within a panel of the others' (k_proj's 8 panels ran on one thread
            // with grain PANEL_GROUP, and gate/up's 88 as 6 chunks of 16 and 8); sweep still groups them by 8.
            ws.range(panels, 1, (p0, p1, w) -> {
                for (int g0 = p0; g0 < p1; g0 += PANEL_GROUP) {
                    sweep(m0, rows, 0, blocks, g0, Math.min(p1, g0 + PANEL_GROUP), n, c, ldc, g, terms, packed, kTotal,
                            w);
                }
            });
        } else {
            ws.range(blocks, 1, (b0, b1, w) ->
                    sweep(m0, rows, b0, b1, 0, panels, n, c, ldc, g, terms, packed, kTotal, w));
        }
    }

    /** Row blocks [b0, b1) × panels [p0, p1): per K block, fill each panel once and run it past every row block. */
    private static void sweep(int m0, int rows, int b0, int b1, int p0, int p1, int n, float[] c, int ldc,
                              float[] g, Term[] terms, float[] packed, int kTotal, Workspace scratch) {
        float[] panel = scratch.panel;
        float[] tile = scratch.tile;
        int kg = 0;
        for (Term t : terms) {
            float[] packedB = t.b().packed(), src = packedB == null ? t.b().rowMajor() : null;
            boolean grouped = packedB == null && src == null && t.b().fillsGroups() && p1 - p0 > 1
                    && p1 - p0 <= PANEL_GROUP;
            boolean ready = false;  // with src: whether the panel was copied during the previous panel's kernel
            for (int k0 = 0; k0 < t.k(); k0 += KB) {
                int kLen = Math.min(KB, t.k() - k0);
                if (grouped) {
                    t.b().fillGroup(k0, kLen, p0 * NRL, Math.min(n, p1 * NRL) - p0 * NRL, scratch.group(), scratch);
                }
                for (int p = p0; p < p1; p++) {
                    int n0 = p * NRL;
                    int cols = Math.min(NRL, n - n0);
                    float[] bp = packedB;
                    int bOff = (p * t.k() + k0) * NRL;
                    // the next (K block, panel) of this sweep, copied by the first kernel when its panel is whole
                    int nextP = p + 1 < p1 ? p + 1 : p0, nextK0 = p + 1 < p1 ? k0 : k0 + KB;
                    float[] nextSrc = null;
                    if (grouped) {
                        bp = scratch.group();
                        bOff = (p - p0) * KB * NRL;
                    } else if (src != null) {
                        if (!ready) {
                            t.b().fill(k0, kLen, n0, cols, panel, scratch);
                        }
                        bp = panel;
                        bOff = 0;
                        ready = nextK0 < t.k() && (nextP + 1) * NRL <= n && b1 > b0
                                && Math.min(MR, m0 + rows - (m0 + b0 * MR)) == MR;
                        nextSrc = ready ? src : null;
                    } else if (bp == null) {
                        t.b().fill(k0, kLen, n0, cols, panel, scratch);
                        bp = panel;
                        bOff = 0;
                    }
                    int nextOff = nextK0 * t.b().rowMajorStride() + nextP * NRL;
                    int nextRows = Math.min(KB, t.k() - nextK0);
                    for (int b = b0; b < b1; b++) {
                        int row0 = m0 + b * MR, valid = Math.min(MR, m0 + rows - row0), a = (b * kTotal + kg + k0) * MR;
                        if (valid == MR) {
                            kernel(packed, a, bp, bOff, kLen, c, ldc, g, row0, MR, n0, cols, tile,
                                    b == b0 ? nextSrc : null, nextOff, t.b().rowMajorStride(), scratch.nextPanel,
                                    nextRows);
                        } else {  // a short last block (64 rows: 5 × 12 + 4) in 4-row tiles, not one 12-row tile
                            for (int r = 0; r < valid; r += TAIL_MR) {
                                kernel4(packed, a + r, bp, bOff, kLen, c, ldc, g, row0 + r,
                                        Math.min(TAIL_MR, valid - r), n0, cols, tile);
                            }
                        }
                    }
                    if (nextSrc != null) {  // the copied panel becomes the current one
                        scratch.swapPanels();
                        panel = scratch.panel;
                    }
                }
            }
            kg += t.k();
        }
    }

    /**
     * The 12 × 2-vector register tile: C[row0.., n0..] += Σ_k A(k) ⊗ B(k) over one K block. Per k: two vector
     * loads of B, twelve broadcasts of A, 24 FMAs. (Measured on AVX-512: 12×2 beat 6×4, 8×3, 5×5 and 14×2.)
     */
    private static void kernel(float[] ap, int aOff, float[] bp, int bOff, int kLen, float[] c, int ldc, float[] g,
                               int row0, int rows, int n0, int cols, float[] tile) {
        kernel(ap, aOff, bp, bOff, kLen, c, ldc, g, row0, rows, n0, cols, tile, null, 0, 0, null, 0);
    }

    /**
     * The same, copying on the way the next B panel's first {@code copyRows} (≤ kLen) rows of NRL floats from
     * {@code copySrc[copyOff + k·copyStride ..]} to {@code copyDst[k·NRL ..]} when copySrc is not null.
     */
    private static void kernel(float[] ap, int aOff, float[] bp, int bOff, int kLen, float[] c, int ldc, float[] g,
                               int row0, int rows, int n0, int cols, float[] tile, float[] copySrc, int copyOff,
                               int copyStride, float[] copyDst, int copyRows) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z;
        FloatVector c20 = z, c21 = z, c30 = z, c31 = z;
        FloatVector c40 = z, c41 = z, c50 = z, c51 = z;
        FloatVector c60 = z, c61 = z, c70 = z, c71 = z;
        FloatVector c80 = z, c81 = z, c90 = z, c91 = z;
        FloatVector c100 = z, c101 = z, c110 = z, c111 = z;
        for (int k = 0, a = aOff, b = bOff; k < kLen; k++, a += MR, b += NRL) {
            if (copySrc != null && k < copyRows) {
                int s = copyOff + k * copyStride;
                FloatVector.fromArray(F, copySrc, s).intoArray(copyDst, k * NRL);
                FloatVector.fromArray(F, copySrc, s + L).intoArray(copyDst, k * NRL + L);
            }
            FloatVector b0 = FloatVector.fromArray(F, bp, b);
            FloatVector b1 = FloatVector.fromArray(F, bp, b + L);
            FloatVector a0 = FloatVector.broadcast(F, ap[a + 0]);
            c00 = b0.fma(a0, c00); c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(F, ap[a + 1]);
            c10 = b0.fma(a1, c10); c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(F, ap[a + 2]);
            c20 = b0.fma(a2, c20); c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(F, ap[a + 3]);
            c30 = b0.fma(a3, c30); c31 = b1.fma(a3, c31);
            FloatVector a4 = FloatVector.broadcast(F, ap[a + 4]);
            c40 = b0.fma(a4, c40); c41 = b1.fma(a4, c41);
            FloatVector a5 = FloatVector.broadcast(F, ap[a + 5]);
            c50 = b0.fma(a5, c50); c51 = b1.fma(a5, c51);
            FloatVector a6 = FloatVector.broadcast(F, ap[a + 6]);
            c60 = b0.fma(a6, c60); c61 = b1.fma(a6, c61);
            FloatVector a7 = FloatVector.broadcast(F, ap[a + 7]);
            c70 = b0.fma(a7, c70); c71 = b1.fma(a7, c71);
            FloatVector a8 = FloatVector.broadcast(F, ap[a + 8]);
            c80 = b0.fma(a8, c80); c81 = b1.fma(a8, c81);
            FloatVector a9 = FloatVector.broadcast(F, ap[a + 9]);
            c90 = b0.fma(a9, c90); c91 = b1.fma(a9, c91);
            FloatVector a10 = FloatVector.broadcast(F, ap[a + 10]);
            c100 = b0.fma(a10, c100); c101 = b1.fma(a10, c101);
            FloatVector a11 = FloatVector.broadcast(F, ap[a + 11]);
            c110 = b0.fma(a11, c110); c111 = b1.fma(a11, c111);
        }
        if (rows == MR && cols == NRL && g == null) {  // the common case: straight into C
            int o = row0 * ldc + n0;
            c00.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c01.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c10.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c11.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c20.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c21.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c30.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c31.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c40.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c41.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c50.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c51.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c60.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c61.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c70.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c71.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c80.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c81.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c90.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c91.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c100.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c101.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            o += ldc;
            c110.add(FloatVector.fromArray(F, c, o)).intoArray(c, o);
            c111.add(FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
            return;
        }
        // Vectors handed to a method C2 does not inline get boxed, so the tile leaves registers right here.
        c00.intoArray(tile, 0 * NRL); c01.intoArray(tile, 0 * NRL + L);
        c10.intoArray(tile, 1 * NRL); c11.intoArray(tile, 1 * NRL + L);
        c20.intoArray(tile, 2 * NRL); c21.intoArray(tile, 2 * NRL + L);
        c30.intoArray(tile, 3 * NRL); c31.intoArray(tile, 3 * NRL + L);
        c40.intoArray(tile, 4 * NRL); c41.intoArray(tile, 4 * NRL + L);
        c50.intoArray(tile, 5 * NRL); c51.intoArray(tile, 5 * NRL + L);
        c60.intoArray(tile, 6 * NRL); c61.intoArray(tile, 6 * NRL + L);
        c70.intoArray(tile, 7 * NRL); c71.intoArray(tile, 7 * NRL + L);
        c80.intoArray(tile, 8 * NRL); c81.intoArray(tile, 8 * NRL + L);
        c90.intoArray(tile, 9 * NRL); c91.intoArray(tile, 9 * NRL + L);
        c100.intoArray(tile, 10 * NRL); c101.intoArray(tile, 10 * NRL + L);
        c110.intoArray(tile, 11 * NRL); c111.intoArray(tile, 11 * NRL + L);
        addTile(tile, c, ldc, g, row0, rows, n0, cols);
    }

    /** Rows of the tile that finishes a short row block. */
    static final int TAIL_MR = 4;

    /**
     * The 4 × 2-vector tile of a short row block's rows (packed rows r … r + 3 of a block of {@link #MR}): per
     * element the same FMAs in the same order as {@link #kernel}, so a row's result does not depend on the tile.
     */
    private static void kernel4(float[] ap, int aOff, float[] bp, int bOff, int kLen, float[] c, int ldc, float[] g,
                                int row0, int rows, int n0, int cols, float[] tile) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z;
        FloatVector c20 = z, c21 = z, c30 = z, c31 = z;
        for (int k = 0, a = aOff, b = bOff; k < kLen; k++, a += MR, b += NRL) {
            FloatVector b0 = FloatVector.fromArray(F, bp, b);
            FloatVector b1 = FloatVector.fromArray(F, bp, b + L);
            FloatVector a0 = FloatVector.broadcast(F, ap[a + 0]);
            c00 = b0.fma(a0, c00); c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(F, ap[a + 1]);
            c10 = b0.fma(a1, c10); c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(F, ap[a + 2]);
            c20 = b0.fma(a2, c20); c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(F, ap[a + 3]);
            c30 = b0.fma(a3, c30); c31 = b1.fma(a3, c31);
        }
        c00.intoArray(tile, 0 * NRL); c01.intoArray(tile, 0 * NRL + L);
        c10.intoArray(tile, 1 * NRL); c11.intoArray(tile, 1 * NRL + L);
        c20.intoArray(tile, 2 * NRL); c21.intoArray(tile, 2 * NRL + L);
        c30.intoArray(tile, 3 * NRL); c31.intoArray(tile, 3 * NRL + L);
        addTile(tile, c, ldc, g, row0, rows, n0, cols);
    }

    /** C[row0 + r, n0 + j] += tile[r, j] (⊙ G) for the tile's valid rows and columns. */
    private static void addTile(float[] tile, float[] c, int ldc, float[] g, int row0, int rows, int n0, int cols) {
        for (int r = 0; r < rows; r++) {
            int o = (row0 + r) * ldc + n0;
            int t = r * NRL;
            int j = 0;
            for (; j <= cols - L; j += L) {
                FloatVector v = FloatVector.fromArray(F, tile, t + j);
                if (g != null) {
                    v = v.mul(FloatVector.fromArray(F, g, o + j));
                }
                v.add(FloatVector.fromArray(F, c, o + j)).intoArray(c, o + j);
            }
            for (; j < cols; j++) {
                c[o + j] += g == null ? tile[t + j] : tile[t + j] * g[o + j];
            }
        }
    }

    static int roundUp(int v, int multiple) {
        return (v + multiple - 1) / multiple * multiple;
    }
}
