package dev.tornadolora.kernels.jvm;

import dev.tornadolora.nf4.Nf4Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import static dev.tornadolora.kernels.jvm.Gemm.F;
import static dev.tornadolora.kernels.jvm.Gemm.KB;
import static dev.tornadolora.kernels.jvm.Gemm.L;
import static dev.tornadolora.kernels.jvm.Gemm.NRL;

/**
 * The right operands of {@link Gemm}: a row-major matrix read as B (natural) or as Bᵀ (transposed), fp32 or
 * NF4. The base matmul uses W transposed in the forward pass (y = x·Wᵀ) and natural in the backward pass
 * (dx = dy·W); an NF4 weight is decoded here, one panel at a time, into the panel buffer the micro-kernel reads.
 */
final class Panels {
    private static final ThreadLocal<float[]> ROWS = ThreadLocal.withInitial(() -> new float[NRL * KB]);

    private Panels() {}

    /** B = src [K × rowLen] (times mul at the same index when not null): B[k][n] = src[k·rowLen + n]. */
    static Gemm.Right rows(float[] src, int rowLen, float[] mul) {
        return (k0, kLen, n0, nLen, dst) -> {
            for (int kk = 0; kk < kLen; kk++) {
                int s = (k0 + kk) * rowLen + n0;
                int d = kk * NRL;
                for (int nn = 0; nn < NRL; nn += L) {
                    VectorMask<Float> in = F.indexInRange(nn, nLen);
                    FloatVector v = FloatVector.fromArray(F, src, s + nn, in);
                    if (mul != null) {
                        v = v.mul(FloatVector.fromArray(F, mul, s + nn, in));
                    }
                    v.intoArray(dst, d + nn);
                }
            }
        };
    }

    /** B = srcᵀ for src [N × rowLen]: B[k][n] = src[n·rowLen + k]. */
    static Gemm.Right transposed(float[] src, int rowLen) {
        return (k0, kLen, n0, nLen, dst) -> transpose(src, n0 * rowLen + k0, rowLen, nLen, kLen, dst);
    }

    /** B = W for an NF4 W [K × N]: rows decoded straight into the panel. */
    static Gemm.Right nf4Rows(Nf4Tensor w) {
        int cols = w.cols();
        return (k0, kLen, n0, nLen, dst) -> {
            for (int kk = 0; kk < kLen; kk++) {
                Nf4Decoder.decode(w, (k0 + kk) * cols + n0, nLen, dst, kk * NRL);
                for (int nn = nLen; nn < NRL; nn++) {
                    dst[kk * NRL + nn] = 0f;
                }
            }
        };
    }

    /** B = Wᵀ for an NF4 W [N × K]: nLen row pieces decoded into a scratch block, then transposed. */
    static Gemm.Right nf4Transposed(Nf4Tensor w) {
        int cols = w.cols();
        return (k0, kLen, n0, nLen, dst) -> {
            float[] rows = ROWS.get();
            for (int nn = 0; nn < nLen; nn++) {
                Nf4Decoder.decode(w, (n0 + nn) * cols + k0, kLen, rows, nn * kLen);
            }
            transpose(rows, 0, kLen, nLen, kLen, dst);
        };
    }

    /** dst[kk·NRL + nn] = src[off + nn·stride + kk] for nn &lt; nLen, zero for nn in [nLen, NRL). */
    private static void transpose(float[] src, int off, int stride, int nLen, int kLen, float[] dst) {
        for (int nn = 0; nn < nLen; nn++) {
            int s = off + nn * stride;
            for (int kk = 0; kk < kLen; kk++) {
                dst[kk * NRL + nn] = src[s + kk];
            }
        }
        if (nLen < NRL) {
            for (int kk = 0; kk < kLen; kk++) {
                for (int nn = nLen; nn < NRL; nn++) {
                    dst[kk * NRL + nn] = 0f;
                }
            }
        }
    }
}
