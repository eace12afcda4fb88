package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

/**
 * The base products of a LoRA layer as one matmul, {@code c[m, n] = Σ_k a[m, k] · B(k, n)} with a [M, K] and
 * B read from the frozen weight W [out, in], transposed or not:
 * <pre>
 *   forward   y  = x · Wᵀ :  a = x [T, in],   B(k, n) = W[n, k]   (bTransposed = 1; M = T, N = out, K = in)
 *   backward  dx = dy · W :  a = dy [T, out], B(k, n) = W[k, n]   (bTransposed = 0; M = T, N = in,  K = out)
 * </pre>
 * W is either fp32 ({@code nf4 = 0}: read from {@code w}) or NF4 ({@code nf4 = 1}: decoded from
 * {@code codes}/{@code scales} inside the loop — the fused dequantize-in-matmul kernel). Scalar arguments are
 * compile-time constants to TornadoVM, so the unused branch and its dummy arrays vanish from the kernel.
 *
 * <p>One math, schedules per device. {@link #panels} (CPU OpenCL devices such as PoCL): B repacked once into
 * panels of 16 columns, each work-item keeps 8 rows × 16 columns of c in eight {@code Float16} registers with k
 * innermost. Explicit vectors matter there: TornadoVM addresses memory through integer casts, so PoCL's
 * vectoriser sees gathers in scalar code, while a {@code Float16} load becomes one {@code vload16} — one AVX-512
 * register (1.5× faster than 8-wide panels on PoCL here; an AVX2 CPU splits it in two). Run with
 * {@code -Dtornado.enable.fma=False}: TornadoVM's {@code fma()} emission stops LLVM's vectoriser.
 * {@link #blocked}: the same register-blocked loop over scalar loads, reading W in place — the fused NF4 kernel
 * on CPUs, where decoding needs per-element code and scale loads anyway. {@link #tiled} (GPUs): 16 × 16 tiles of
 * a and B staged in local memory by a work-group (40× slower on PoCL). Work-items of {@link #panels} and
 * {@link #blocked} clamp their indices instead of branching, so sizes need
 * not be multiples of the block nor the grid of the local size: a clamped duplicate (at an edge, or in the
 * padding of the grid) stores the same value as its neighbour.
 * Loop-bound parameters come in dimension order, as TornadoVM's grid scheduler expects.
 *
 * <p>The row count m (the batch's tokens) changes from call to call, so it travels in a device array,
 * {@code sizes[}{@link Sizes#TOKENS}{@code ]}, and the grids cover the plan's token capacity: work-items past the
 * batch's rows do nothing. Scalar arguments are compile-time constants, so one compiled plan serves every batch
 * up to its capacity.
 */
public final class Matmul {
    public static final int PANEL = 16;
    public static final int PANEL_ROWS = 8;
    public static final int BLOCK_N = 4;
    public static final int BLOCK_M = 2;
    public static final int TILE = 16;

    private Matmul() {}

    /** Element e of the flattened W [out, in], from fp32 or NF4 storage. */
    public static float weight(FloatArray w, ByteArray codes, FloatArray scales, FloatArray codebook, int e, int nf4,
                               int log2BlockSize) {
        return nf4 == 1 ? Nf4Decode.element(codes, scales, codebook, e, log2BlockSize) : w.get(e);
    }

    /**
     * CPU schedule over B in panels: {@code b[p·K + k]} holds B(k, 16p .. 16p+15) (zero past N). Dimension 0 runs over
     * panels, dimension 1 over blocks of 8 rows of c. With {@code useSecond = 1} a second product a2 [M, K2] · B2
     * (panels likewise) is added while the block is in registers — the LoRA epilogue {@code s·h·Bᵀ} with s folded
     * into B2 — and with {@code useBias = 1} the accumulators start from the bias panel. B's panels start at
     * Float16 {@code bOffset} of {@code b} and B2's at {@code b2Offset} of {@code b2} (a decoder layer's bases are
     * decoded into one buffer end to end, {@link PanelSegments}); the sums are the same whatever the offsets.
     */
    public static void panels(FloatArray a, VectorFloat16 b, FloatArray a2, VectorFloat16 b2, VectorFloat16 bias,
                              FloatArray c, IntArray sizes, int nPanels, int mBlocks, int n, int k, int k2,
                              int useSecond, int useBias, int bOffset, int b2Offset) {
        for (@Parallel int p = 0; p < nPanels; p++) {
            for (@Parallel int mb = 0; mb < mBlocks; mb++) {
              int m = sizes.get(Sizes.TOKENS);
              if (mb * PANEL_ROWS < m) {
                int second = useSecond * sizes.get(Sizes.ADAPTERS);
                int r0 = Math.min(mb * PANEL_ROWS, m - 1);
                int r1 = Math.min(r0 + 1, m - 1);
                int r2 = Math.min(r0 + 2, m - 1);
                int r3 = Math.min(r0 + 3, m - 1);
                int r4 = Math.min(r0 + 4, m - 1);
                int r5 = Math.min(r0 + 5, m - 1);
                int r6 = Math.min(r0 + 6, m - 1);
                int r7 = Math.min(r0 + 7, m - 1);
                Float16 init = useBias == 1 ? bias.get(p) : zero();
                Float16 c0 = init, c1 = init, c2 = init, c3 = init, c4 = init, c5 = init, c6 = init, c7 = init;
                for (int kk = 0; kk < k; kk++) {
                    Float16 bv = b.get(bOffset + p * k + kk);
                    c0 = Float16.add(c0, Float16.mult(bv, splat(a.get(r0 * k + kk))));
                    c1 = Float16.add(c1, Float16.mult(bv, splat(a.get(r1 * k + kk))));
                    c2 = Float16.add(c2, Float16.mult(bv, splat(a.get(r2 * k + kk))));
                    c3 = Float16.add(c3, Float16.mult(bv, splat(a.get(r3 * k + kk))));
                    c4 = Float16.add(c4, Float16.mult(bv, splat(a.get(r4 * k + kk))));
                    c5 = Float16.add(c5, Float16.mult(bv, splat(a.get(r5 * k + kk))));
                    c6 = Float16.add(c6, Float16.mult(bv, splat(a.get(r6 * k + kk))));
                    c7 = Float16.add(c7, Float16.mult(bv, splat(a.get(r7 * k + kk))));
                }
                if (second == 1) {
                    for (int kk = 0; kk < k2; kk++) {
                        Float16 bv = b2.get(b2Offset + p * k2 + kk);
                        c0 = Float16.add(c0, Float16.mult(bv, splat(a2.get(r0 * k2 + kk))));
                        c1 = Float16.add(c1, Float16.mult(bv, splat(a2.get(r1 * k2 + kk))));
                        c2 = Float16.add(c2, Float16.mult(bv, splat(a2.get(r2 * k2 + kk))));
                        c3 = Float16.add(c3, Float16.mult(bv, splat(a2.get(r3 * k2 + kk))));
                        c4 = Float16.add(c4, Float16.mult(bv, splat(a2.get(r4 * k2 + kk))));
                        c5 = Float16.add(c5, Float16.mult(bv, splat(a2.get(r5 * k2 + kk))));
                        c6 = Float16.add(c6, Float16.mult(bv, splat(a2.get(r6 * k2 + kk))));
                        c7 = Float16.add(c7, Float16.mult(bv, splat(a2.get(r7 * k2 + kk))));
                    }
                }
                int col = p * PANEL;
                storeRow(c, r0 * n, col, n, c0);
                storeRow(c, r1 * n, col, n, c1);
                storeRow(c, r2 * n, col, n, c2);
                storeRow(c, r3 * n, col, n, c3);
                storeRow(c, r4 * n, col, n, c4);
                storeRow(c, r5 * n, col, n, c5);
                storeRow(c, r6 * n, col, n, c6);
                storeRow(c, r7 * n, col, n, c7);
              }
            }
        }
    }

    /**
     * The backward product read from the forward's panels, {@code c[m, n] = Σ_q a[m, q] · W[q, n]} with W [K, N]
     * held as {@code b[p·N + i]} = W(16p .. 16p+15, i) (the panels {@link #panels} reads as Wᵀ: the base is on
     * the device in one layout for both passes). a comes as panels too: {@code a[r·kPanels + p]} = a(r, 16p ..
     * 16p+15), zero past K. Dimension 0 over the columns of c, dimension 1 over blocks of 8 rows; each work-item
     * keeps 8 lane-wise partial sums and adds their lanes at the end. The loop bounds ({@code columns},
     * {@code mBlocks}) are separate from {@code n}: with a grid scheduler TornadoVM replaces a loop bound by the
     * grid's size, padding included, so a bound must not index memory.
     */
    public static void panelsTransposed(VectorFloat16 a, VectorFloat16 b, FloatArray c, IntArray sizes, int columns,
                                        int mBlocks, int n, int kPanels) {
        for (@Parallel int i = 0; i < columns; i++) {
            for (@Parallel int mb = 0; mb < mBlocks; mb++) {
              int m = sizes.get(Sizes.TOKENS);
              if (mb * PANEL_ROWS < m) {
                int col = Math.min(i, n - 1); // the grid's padding repeats the last column
                int r0 = mb * PANEL_ROWS;
                int r1 = Math.min(r0 + 1, m - 1);
                int r2 = Math.min(r0 + 2, m - 1);
                int r3 = Math.min(r0 + 3, m - 1);
                int r4 = Math.min(r0 + 4, m - 1);
                int r5 = Math.min(r0 + 5, m - 1);
                int r6 = Math.min(r0 + 6, m - 1);
                int r7 = Math.min(r0 + 7, m - 1);
                Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(), c6 = zero(),
                        c7 = zero();
                for (int p = 0; p < kPanels; p++) {
                    Float16 w = b.get(p * n + col);
                    c0 = Float16.add(c0, Float16.mult(w, a.get(r0 * kPanels + p)));
                    c1 = Float16.add(c1, Float16.mult(w, a.get(r1 * kPanels + p)));
                    c2 = Float16.add(c2, Float16.mult(w, a.get(r2 * kPanels + p)));
                    c3 = Float16.add(c3, Float16.mult(w, a.get(r3 * kPanels + p)));
                    c4 = Float16.add(c4, Float16.mult(w, a.get(r4 * kPanels + p)));
                    c5 = Float16.add(c5, Float16.mult(w, a.get(r5 * kPanels + p)));
                    c6 = Float16.add(c6, Float16.mult(w, a.get(r6 * kPanels + p)));
                    c7 = Float16.add(c7, Float16.mult(w, a.get(r7 * kPanels + p)));
                }
                c.set(r0 * n + col, sumLanes(c0));
                c.set(r1 * n + col, sumLanes(c1));
                c.set(r2 * n + col, sumLanes(c2));
                c.set(r3 * n + col, sumLanes(c3));
                c.set(r4 * n + col, sumLanes(c4));
                c.set(r5 * n + col, sumLanes(c5));
                c.set(r6 * n + col, sumLanes(c6));
                c.set(r7 * n + col, sumLanes(c7));
              }
            }
        }
    }

    /** The sum of v's 16 lanes, pairwise. */
    public static float sumLanes(Float16 v) {
        float s01 = v.getS0() + v.getS1(), s23 = v.getS2() + v.getS3(), s45 = v.getS4() + v.getS5();
        float s67 = v.getS6() + v.getS7(), s89 = v.getS8() + v.getS9(), s1011 = v.getS10() + v.getS11();
        float s1213 = v.getS12() + v.getS13(), s1415 = v.getS14() + v.getS15();
        return ((s01 + s23) + (s45 + s67)) + ((s89 + s1011) + (s1213 + s1415));
    }

    /** Rows of a [rows, k] as the row panels {@link #panelsTransposed} reads: {@code out[r·kPanels + p]}. */
    public static void packRows(float[] a, int rows, int k, VectorFloat16 out) {
        FloatArray raw = out.getArray();
        int kPanels = (k + PANEL - 1) / PANEL;
        for (int r = 0; r < rows; r++) {
            java.lang.foreign.MemorySegment.copy(a, r * k, raw.getSegment(), java.lang.foreign.ValueLayout.JAVA_FLOAT,
                    (long) r * kPanels * PANEL * Float.BYTES, k);
        }
    }

    /** A Float16 of v in every lane; Float16 × Float16 stays one vector multiply, Float16 × float does not. */
    public static Float16 splat(float v) {
        return new Float16(v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v);
    }

    public static Float16 zero() {
        return splat(0f);
    }

    /** Stores the lanes of v that fall inside the row: c[row + col + l] for col + l < n. */
    public static void storeRow(FloatArray c, int row, int col, int n, Float16 v) {
        if (col < n) c.set(row + col, v.getS0());
        if (col + 1 < n) c.set(row + col + 1, v.getS1());
        if (col + 2 < n) c.set(row + col + 2, v.getS2());
        if (col + 3 < n) c.set(row + col + 3, v.getS3());
        if (col + 4 < n) c.set(row + col + 4, v.getS4());
        if (col + 5 < n) c.set(row + col + 5, v.getS5());
        if (col + 6 < n) c.set(row + col + 6, v.getS6());
        if (col + 7 < n) c.set(row + col + 7, v.getS7());
        if (col + 8 < n) c.set(row + col + 8, v.getS8());
        if (col + 9 < n) c.set(row + col + 9, v.getS9());
        if (col + 10 < n) c.set(row + col + 10, v.getS10());
        if (col + 11 < n) c.set(row + col + 11, v.getS11());
        if (col + 12 < n) c.set(row + col + 12, v.getS12());
        if (col + 13 < n) c.set(row + col + 13, v.getS13());
        if (col + 14 < n) c.set(row + col + 14, v.getS14());
        if (col + 15 < n) c.set(row + col + 15, v.getS15());
    }

    /** Repacks B(k, n) from W (B = Wᵀ when {@code bTransposed}) into the panels {@link #panels} reads. */
    public static VectorFloat16 packPanels(float[] w, int n, int k, boolean bTransposed) {
        VectorFloat16 out = new VectorFloat16((n + PANEL - 1) / PANEL * k);
        packPanels(w, n, k, bTransposed, 1f, out);
        return out;
    }

    /** {@link #packPanels} into an existing buffer, every value multiplied by {@code scale}. */
    public static void packPanels(float[] w, int n, int k, boolean bTransposed, float scale, VectorFloat16 out) {
        FloatArray raw = out.getArray();
        int nPanels = (n + PANEL - 1) / PANEL;
        for (int p = 0; p < nPanels; p++) {
            for (int kk = 0; kk < k; kk++) {
                for (int l = 0; l < PANEL; l++) {
                    int col = p * PANEL + l;
                    float v = col >= n ? 0f : bTransposed ? w[col * k + kk] : w[kk * n + col];
                    raw.set((p * k + kk) * PANEL + l, scale * v);
                }
            }
        }
    }

    /** Register-blocked schedule reading W in place: dimension 0 over blocks of 4 columns, 1 over pairs of rows. */
    public static void blocked(FloatArray a, FloatArray w, ByteArray codes, FloatArray scales, FloatArray codebook,
                               FloatArray c, IntArray sizes, int nBlocks, int mBlocks, int n, int k, int bTransposed,
                               int nf4, int log2BlockSize) {
        for (@Parallel int nb = 0; nb < nBlocks; nb++) {
            for (@Parallel int mb = 0; mb < mBlocks; mb++) {
              int m = sizes.get(Sizes.TOKENS);
              if (mb * BLOCK_M < m) {
                int n0 = Math.min(nb * BLOCK_N, n - 1);
                int n1 = Math.min(n0 + 1, n - 1);
                int n2 = Math.min(n0 + 2, n - 1);
                int n3 = Math.min(n0 + 3, n - 1);
                int m0 = Math.min(mb * BLOCK_M, m - 1);
                int m1 = Math.min(m0 + 1, m - 1);
                int strideK = bTransposed == 1 ? 1 : n;
                int strideN = bTransposed == 1 ? k : 1;
                float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
                for (int kk = 0; kk < k; kk++) {
                    float a0 = a.get(m0 * k + kk);
                    float a1 = a.get(m1 * k + kk);
                    int base = kk * strideK;
                    float b0 = weight(w, codes, scales, codebook, base + n0 * strideN, nf4, log2BlockSize);
                    float b1 = weight(w, codes, scales, codebook, base + n1 * strideN, nf4, log2BlockSize);
                    float b2 = weight(w, codes, scales, codebook, base + n2 * strideN, nf4, log2BlockSize);
                    float b3 = weight(w, codes, scales, codebook, base + n3 * strideN, nf4, log2BlockSize);
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                }
                c.set(m0 * n + n0, c00); c.set(m0 * n + n1, c01); c.set(m0 * n + n2, c02); c.set(m0 * n + n3, c03);
                c.set(m1 * n + n0, c10); c.set(m1 * n + n1, c11); c.set(m1 * n + n2, c12); c.set(m1 * n + n3, c13);
              }
            }
        }
    }

    /**
     * GPU schedule: a TILE × TILE work-group stages tiles of a and B in local memory (B decoded from NF4 as it is
     * staged). The global grid is (N, M) rounded up to TILE; {@code kTiles} = ⌈K / TILE⌉.
     */
    public static void tiled(KernelContext ctx, FloatArray a, FloatArray w, ByteArray codes, FloatArray scales,
                             FloatArray codebook, FloatArray c, IntArray sizes, int n, int k, int kTiles,
                             int bTransposed, int nf4, int log2BlockSize) {
        int m = sizes.get(Sizes.TOKENS);
        int col = ctx.globalIdx;
        int row = ctx.globalIdy;
        int lx = ctx.localIdx;
        int ly = ctx.localIdy;
        float[] aTile = ctx.allocateFloatLocalArray(TILE * TILE);
        float[] bTile = ctx.allocateFloatLocalArray(TILE * TILE);
        float acc = 0f;
        for (int t = 0; t < kTiles; t++) {
            int ka = t * TILE + lx;
            int kb = t * TILE + ly;
            float av = 0f;
            if (row < m && ka < k) {
                av = a.get(row * k + ka);
            }
            float bv = 0f;
            if (col < n && kb < k) {
                bv = weight(w, codes, scales, codebook, bTransposed == 1 ? col * k + kb : kb * n + col, nf4, log2BlockSize);
            }
            aTile[ly * TILE + lx] = av;
            bTile[ly * TILE + lx] = bv;
            ctx.localBarrier();
            for (int q = 0; q < TILE; q++) {
                acc += aTile[ly * TILE + q] * bTile[q * TILE + lx];
            }
            ctx.localBarrier();
        }
        if (row < m && col < n) {
            c.set(row * n + col, acc);
        }
    }

    /** The sequential reference: c = a · B with B = Wᵀ when {@code bTransposed}, for a dequantized W. */
    public static void reference(float[] a, float[] w, float[] c, int m, int n, int k, boolean bTransposed) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int q = 0; q < k; q++) {
                    acc += (double) a[i * k + q] * (bTransposed ? w[j * k + q] : w[q * n + j]);
                }
                c[i * n + j] = (float) acc;
            }
        }
    }
}
