package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

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
 * <p>One math, two schedules. {@link #blocked} (CPU OpenCL devices such as PoCL): each work-item keeps a 2 × 4
 * block of c in registers with k innermost; run with {@code -Dtornado.enable.fma=False}, since TornadoVM's
 * {@code fma()} emission stops LLVM's vectoriser. {@link #tiled} (GPUs): 16 × 16 tiles of a and B staged in local
 * memory by a work-group. Work-items of {@link #blocked} clamp their indices instead of branching, so sizes need
 * not be multiples of the block nor the grid of the local size: a clamped duplicate (at an edge, or in the
 * padding of the grid) stores the same value as its neighbour.
 * Loop-bound parameters come in dimension order, as TornadoVM's grid scheduler expects.
 */
public final class Matmul {
    public static final int BLOCK_N = 4;
    public static final int BLOCK_M = 2;
    public static final int TILE = 16;

    private Matmul() {}

    /** Element e of the flattened W [out, in], from fp32 or NF4 storage. */
    public static float weight(FloatArray w, ByteArray codes, FloatArray scales, FloatArray codebook, int e, int nf4,
                               int log2BlockSize) {
        return nf4 == 1 ? Nf4Decode.element(codes, scales, codebook, e, log2BlockSize) : w.get(e);
    }

    /** CPU schedule: dimension 0 runs over blocks of 4 columns of c, dimension 1 over pairs of rows. */
    public static void blocked(FloatArray a, FloatArray w, ByteArray codes, FloatArray scales, FloatArray codebook,
                               FloatArray c, int nBlocks, int mBlocks, int m, int n, int k, int bTransposed, int nf4,
                               int log2BlockSize) {
        for (@Parallel int nb = 0; nb < nBlocks; nb++) {
            for (@Parallel int mb = 0; mb < mBlocks; mb++) {
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

    /**
     * GPU schedule: a TILE × TILE work-group stages tiles of a and B in local memory (B decoded from NF4 as it is
     * staged). The global grid is (N, M) rounded up to TILE; {@code kTiles} = ⌈K / TILE⌉.
     */
    public static void tiled(KernelContext ctx, FloatArray a, FloatArray w, ByteArray codes, FloatArray scales,
                             FloatArray codebook, FloatArray c, int m, int n, int k, int kTiles, int bTransposed,
                             int nf4, int log2BlockSize) {
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
