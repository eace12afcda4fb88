package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.jvm.Workspaces.Workspace;
import dev.tornadolora.tensor.BaseWeight;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;


import static dev.tornadolora.kernels.jvm.Gemm.F;
import static dev.tornadolora.kernels.jvm.Gemm.KB;
import static dev.tornadolora.kernels.jvm.Gemm.L;
import static dev.tornadolora.kernels.jvm.Gemm.NRL;

/**
 * The right operands of {@link Gemm}: a row-major matrix read as B (natural) or as Bᵀ (transposed), fp32 or
 * coded (NF4, BF16, F16). The base matmul uses W transposed in the forward pass (y = x·Wᵀ) and natural in the backward pass
 * (dx = dy·W); an NF4 weight is decoded here, one panel at a time, into the panel buffer the micro-kernel reads.
 */
final class Panels {
    private Panels() {}

    /**
     * Wᵀ for an fp32 W [N × rowLen], read in place from {@code panels}, which {@link #packTransposed} made from
     * W (a layer binding packs its base once and keeps the panels).
     */
    static Gemm.Right transposedPacked(float[] w, int rowLen, float[] panels) {
        Gemm.Right fallback = transposed(w, rowLen);
        return new Gemm.Right() {
            @Override
            public void fill(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
                fallback.fill(k0, kLen, n0, nLen, dst, scratch);
            }

            @Override
            public float[] packed() {
                return panels;
            }
        };
    }

    /** The Wᵀ panels of W [N × rowLen], as {@link Gemm.Right#packed()} reads them. */
    static float[] packTransposed(Workspaces ws, float[] w, int rowLen) {
        int n = w.length / rowLen;
        int panels = (n + NRL - 1) / NRL;
        float[] packed = new float[panels * rowLen * NRL];
        Gemm.Right src = transposed(w, rowLen);
        ws.range(panels, 1, (p0, p1, scratch) -> {
            for (int p = p0; p < p1; p++) {
                for (int k0 = 0; k0 < rowLen; k0 += KB) {
                    int kLen = Math.min(KB, rowLen - k0);
                    src.fill(k0, kLen, p * NRL, Math.min(NRL, n - p * NRL), scratch.panel, scratch);
                    System.arraycopy(scratch.panel, 0, packed, (p * rowLen + k0) * NRL, kLen * NRL);
                }
            }
        });
        return packed;
    }

    /** B = src [K × rowLen] (times mul at the same index when not null): B[k][n] = src[k·rowLen + n]. */
    static Gemm.Right rows(float[] src, int rowLen, float[] mul) {
        return new Gemm.Right() {
            @Override
            public void fill(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
                for (int kk = 0; kk < kLen; kk++) {
                    rowPiece(src, (k0 + kk) * rowLen + n0, mul, nLen, dst, kk * NRL);
                }
            }

            @Override
            public float[] rowMajor() {
                return mul == null ? src : null;
            }

            @Override
            public int rowMajorStride() {
                return rowLen;
            }

            @Override
            public boolean fillsGroups() {
                return true;
            }

            @Override
            public void fillGroup(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
                for (int kk = 0; kk < kLen; kk++) {  // row by row: each row's nLen floats read in order
                    int s = (k0 + kk) * rowLen + n0;
                    for (int q = 0; q * NRL < nLen; q++) {
                        rowPiece(src, s + q * NRL, mul, Math.min(NRL, nLen - q * NRL), dst, (q * KB + kk) * NRL);
                    }
                }
            }
        };
    }

    /** dst[d + nn] = src[s + nn] (· mul[s + nn]) for nn &lt; nLen, zero for nn in [nLen, NRL). */
    private static void rowPiece(float[] src, int s, float[] mul, int nLen, float[] dst, int d) {
        int nn = 0;
        for (; nn <= nLen - L; nn += L) {
            FloatVector v = FloatVector.fromArray(F, src, s + nn);
            if (mul != null) {
                v = v.mul(FloatVector.fromArray(F, mul, s + nn));
            }
            v.intoArray(dst, d + nn);
        }
        for (; nn < NRL; nn += L) {  // the ragged edge, zero-padded
            VectorMask<Float> in = F.indexInRange(nn, nLen);
            FloatVector v = FloatVector.fromArray(F, src, s + nn, in);
            if (mul != null) {
                v = v.mul(FloatVector.fromArray(F, mul, s + nn, in));
            }
            v.intoArray(dst, d + nn);
        }
    }

    /** B = srcᵀ for src [N × rowLen]: B[k][n] = src[n·rowLen + k]. */
    static Gemm.Right transposed(float[] src, int rowLen) {
        return (k0, kLen, n0, nLen, dst, scratch) -> transpose(src, n0 * rowLen + k0, rowLen, nLen, kLen, dst);
    }

    /** B = W for a coded (NF4, BF16, F16) W [K × N]: rows decoded straight into the panel. */
    static Gemm.Right decodedRows(BaseWeight w) {
        int cols = w.cols();
        return new Gemm.Right() {
            @Override
            public void fill(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
                for (int kk = 0; kk < kLen; kk++) {
                    decodedPiece(w, (k0 + kk) * cols + n0, nLen, dst, kk * NRL);
                }
            }

            @Override
            public boolean fillsGroups() {
                return true;
            }

            @Override
            public void fillGroup(int k0, int kLen, int n0, int nLen, float[] dst, Workspace scratch) {
                for (int kk = 0; kk < kLen; kk++) {
                    int e = (k0 + kk) * cols + n0;
                    for (int q = 0; q * NRL < nLen; q++) {
                        decodedPiece(w, e + q * NRL, Math.min(NRL, nLen - q * NRL), dst, (q * KB + kk) * NRL);
                    }
                }
            }
        };
    }

    /** dst[d + nn] = W.flat[e + nn] for nn &lt; nLen, zero for nn in [nLen, NRL). */
    private static void decodedPiece(BaseWeight w, int e, int nLen, float[] dst, int d) {
        WeightDecoder.decode(w, e, nLen, dst, d);
        for (int nn = nLen; nn < NRL; nn++) {
            dst[d + nn] = 0f;
        }
    }

    /**
     * B = Wᵀ for a coded (NF4, BF16, F16) W [N × K]: the panel's nLen row pieces decoded (in row order) into a
     * scratch block with row stride KB (the worker's {@link Workspace#rowPieces}), then read back column by column
     * with gathers. A 16-bit W is never packed
     * as fp32 panels (that copy would take twice the weight's memory).
     */
    static Gemm.Right decodedTransposed(BaseWeight w) {
        int cols = w.cols();
        return (k0, kLen, n0, nLen, dst, scratch) -> {
            float[] rows = scratch.rowPieces;
            for (int nn = 0; nn < nLen; nn++) {
                WeightDecoder.decode(w, (n0 + nn) * cols + k0, kLen, rows, nn * KB);
            }
            if (nLen < NRL) {
                java.util.Arrays.fill(rows, nLen * KB, NRL * KB, 0f);
            }
            for (int kk = 0; kk < kLen; kk++) {
                for (int v = 0; v < NRL; v += L) {
                    FloatVector.fromArray(F, rows, kk, COLUMN, v).intoArray(dst, kk * NRL + v);
                }
            }
        };
    }

    /** Offsets of one column's NRL elements in the scratch block of {@link #decodedTransposed}. */
    private static final int[] COLUMN = java.util.stream.IntStream.range(0, NRL).map(nn -> nn * KB).toArray();

    /** dst[kk·NRL + nn] = src[off + nn·stride + kk] for nn &lt; nLen, zero for nn in [nLen, NRL). */
    private static void transpose(float[] src, int off, int stride, int nLen, int kLen, float[] dst) {
        // Written in order, read from nLen sequential streams: the panel is bigger than L1, its rows are not.
        for (int kk = 0; kk < kLen; kk++) {
            int d = kk * NRL;
            for (int nn = 0; nn < nLen; nn++) {
                dst[d + nn] = src[off + nn * stride + kk];
            }
            for (int nn = nLen; nn < NRL; nn++) {
                dst[d + nn] = 0f;
            }
        }
    }
}
