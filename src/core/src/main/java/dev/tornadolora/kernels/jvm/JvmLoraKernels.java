package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.LoraKernels;
import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nf4.Nf4Tensor;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;

import java.util.Arrays;

import static dev.tornadolora.kernels.jvm.Gemm.Left;
import static dev.tornadolora.kernels.jvm.Gemm.Term;

/**
 * The default CPU backend: the math of {@link LoraKernels} on {@code jdk.incubator.vector} and all cores
 * ({@link Parallel}). Every product of more than {@link #GEMV_MAX_TOKENS} tokens runs on one packed GEMM
 * ({@link Gemm}); the base matmul and the LoRA update are two terms of one pass, so the update is added while
 * the output tile is in registers:
 *
 * <pre>
 *   forward    h  = (x⊙m)·Aᵀ                  GEMM, B = Aᵀ
 *              y  = b + x·Wᵀ + (s·h)·Bᵀ        GEMM, two terms; Wᵀ (fp32: packed once, cached; NF4: decoded per panel)
 *   backward   dB += (s·dy)ᵀ·h                 GEMM, A operand = dyᵀ by strides
 *              dh  = (s·dy)·B                  GEMM
 *              dA += dhᵀ·(x⊙m)                 GEMM
 *              dx  = dy·W + dh·A               GEMM, two terms; W read natural
 *                    (with dropout: dx = dy·W, then dx += (dh·A)⊙m, the multiplier applied on the tile)
 * </pre>
 *
 * For 1..{@link #GEMV_MAX_TOKENS} tokens both passes are matrix-vector products that read W once, row by row
 * ({@link Gemv}): forward dots rows of W with the tokens, backward scales rows of W into dx.
 * Base weights other than {@link DenseWeight} and {@link Nf4Tensor} fall back to the reference.
 */
public final class JvmLoraKernels implements LoraKernels {

    /** Up to this many tokens both passes read W row by row instead of packing panels. */
    static final int GEMV_MAX_TOKENS = 8;

    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        BaseWeight w = p.base();
        if (!(w instanceof DenseWeight || w instanceof Nf4Tensor)) {
            ScalarLoraKernels.INSTANCE.forward(p, x, m, tokens, h, y);
            return;
        }
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        if (tokens <= GEMV_MAX_TOKENS) {
            forwardFewTokens(p, x, m, tokens, h, y);
            return;
        }
        if (h != null) {
            Arrays.fill(h, 0, tokens * r, 0f);
            Gemm.multiplyAdd(tokens, r, h, r,
                    new Term(Left.rows(x, in).times(m), Panels.transposed(p.loraA(), in), in));
        }
        fillRows(y, tokens, out, p.bias());
        Term base = new Term(Left.rows(x, in), transposed(w), in);
        if (h == null) {
            Gemm.multiplyAdd(tokens, out, y, out, base);
        } else {
            Gemm.multiplyAdd(tokens, out, y, out, base,
                    new Term(Left.rows(h, r).scaled(p.scale()), Panels.transposed(p.loraB(), r), r));
        }
    }

    @Override
    public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy,
                         float[] dx, float[] gradA, float[] gradB) {
        BaseWeight w = p.base();
        if (!(w instanceof DenseWeight || w instanceof Nf4Tensor)) {
            ScalarLoraKernels.INSTANCE.backward(p, x, m, tokens, h, dy, dx, gradA, gradB);
            return;
        }
        if (tokens <= GEMV_MAX_TOKENS) {
            backwardFewTokens(p, x, m, tokens, h, dy, dx, gradA, gradB);
            return;
        }
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        float s = p.scale();
        float[] dh = null;
        if (gradA != null) {
            Gemm.multiplyAdd(out, r, gradB, r,
                    new Term(Left.transposed(dy, out).scaled(s), Panels.rows(h, r, null), tokens));
            dh = new float[tokens * r];
            Gemm.multiplyAdd(tokens, r, dh, r,
                    new Term(Left.rows(dy, out).scaled(s), Panels.rows(p.loraB(), r, null), out));
            Gemm.multiplyAdd(r, in, gradA, in,
                    new Term(Left.transposed(dh, r), Panels.rows(x, in, m), tokens));
        }
        if (dx == null) {
            return;
        }
        Arrays.fill(dx, 0, tokens * in, 0f);
        Term base = new Term(Left.rows(dy, out), natural(w), out);
        if (dh == null) {
            Gemm.multiplyAdd(tokens, in, dx, in, base);
        } else {
            Term lora = new Term(Left.rows(dh, r), Panels.rows(p.loraA(), in, null), r);
            if (m == null) {
                Gemm.multiplyAdd(tokens, in, dx, in, base, lora);
            } else {
                Gemm.multiplyAdd(tokens, in, dx, in, base);
                Gemm.multiplyAdd(tokens, in, dx, in, m, lora);
            }
        }
    }

    /** y = b + x·Wᵀ + s·h·Bᵀ row by row of W, for a handful of tokens. */
    private static void forwardFewTokens(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        if (h != null) {
            Gemv.rows(p.loraA(), in, dropped(x, m, tokens * in), tokens, 0, r, h, r);
        }
        BaseWeight w = p.base();
        float[] bias = p.bias(), b = p.loraB();
        float s = p.scale();
        boolean inRegisters = tokens == 1 && w instanceof Nf4Tensor q && Gemv.decodesInRegisters(q);
        float[] xd = inRegisters ? Nf4Decoder.deinterleave(x, 0, in) : null;
        Parallel.forRange(out, 64, (j0, j1) -> {
            if (w instanceof DenseWeight d) {
                Gemv.rows(d.data(), in, x, tokens, j0, j1, y, out);
            } else if (inRegisters) {
                Gemv.rowsDecoded((Nf4Tensor) w, xd, j0, j1, y);
            } else {
                Gemv.rows((Nf4Tensor) w, x, tokens, j0, j1, y, out);
            }
            for (int t = 0; t < tokens; t++) {
                for (int j = j0; j < j1; j++) {
                    float v = y[t * out + j];
                    if (bias != null) {
                        v += bias[j];
                    }
                    if (h != null) {
                        float lora = 0f;
                        for (int k = 0; k < r; k++) {
                            lora += h[t * r + k] * b[j * r + k];
                        }
                        v += s * lora;
                    }
                    y[t * out + j] = v;
                }
            }
        });
    }

    /**
     * Backward for a handful of tokens: dx = dy·W as rows of W scaled into dx, column block by column block
     * ({@link Gemv#columns}); the adapter gradients, a few rank-sized outer products, as plain loops.
     */
    private static void backwardFewTokens(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy,
                                          float[] dx, float[] gradA, float[] gradB) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        float s = p.scale();
        float[] a = p.loraA(), b = p.loraB();
        float[] dh = null;
        if (gradA != null) {
            dh = new float[tokens * r];
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < out; j++) {
                    float g = s * dy[t * out + j];
                    Gemv.axpy(g, h, t * r, gradB, j * r, r);     // dB[j, :] += s·dy[t, j]·h[t, :]
                    Gemv.axpy(g, b, j * r, dh, t * r, r);        // dh[t, :] += s·dy[t, j]·B[j, :]
                }
            }
            float[] xm = dropped(x, m, tokens * in);
            float[] dhs = dh;
            Parallel.forRange(r, 1, (k0, k1) -> {
                for (int k = k0; k < k1; k++) {
                    for (int t = 0; t < tokens; t++) {
                        Gemv.axpy(dhs[t * r + k], xm, t * in, gradA, k * in, in);  // dA[k, :] += dh[t, k]·xm[t, :]
                    }
                }
            });
        }
        if (dx == null) {
            return;
        }
        BaseWeight w = p.base();
        float[] dense = w instanceof DenseWeight d ? d.data() : null;
        Nf4Tensor nf4 = w instanceof Nf4Tensor q ? q : null;
        float[] lora = dh != null && m != null ? new float[tokens * in] : null;
        float[] dhs = dh;
        Parallel.forRange(in, Gemv.COLUMN_BLOCK, (i0, i1) -> {
            for (int t = 0; t < tokens; t++) {
                Arrays.fill(dx, t * in + i0, t * in + i1, 0f);
            }
            Gemv.columns(dense, nf4, out, in, dy, out, tokens, i0, i1, dx, in);
            if (dhs != null) {  // + (dh·A)⊙m
                float[] target = lora == null ? dx : lora;
                Gemv.columns(a, null, r, in, dhs, r, tokens, i0, i1, target, in);
                if (lora != null) {
                    for (int t = 0; t < tokens; t++) {
                        for (int i = t * in + i0; i < t * in + i1; i++) {
                            dx[i] += lora[i] * m[i];
                        }
                    }
                }
            }
        });
    }

    private static float[] dropped(float[] x, float[] m, int n) {
        if (m == null) {
            return x;
        }
        float[] xm = new float[n];
        for (int i = 0; i < n; i++) {
            xm[i] = x[i] * m[i];
        }
        return xm;
    }

    /** Rows of y set to the bias (or zero), which the GEMM then accumulates onto. */
    private static void fillRows(float[] y, int tokens, int out, float[] bias) {
        if (bias == null) {
            Arrays.fill(y, 0, tokens * out, 0f);
        } else {
            for (int t = 0; t < tokens; t++) {
                System.arraycopy(bias, 0, y, t * out, out);
            }
        }
    }

    /** Wᵀ [in × out] as a GEMM right operand (forward). */
    private static Gemm.Right transposed(BaseWeight w) {
        return w instanceof DenseWeight d ? Panels.transposedPacked(d.data(), d.cols()) : Panels.nf4Transposed((Nf4Tensor) w);
    }

    /** W [out × in] as a GEMM right operand (backward). */
    private static Gemm.Right natural(BaseWeight w) {
        return w instanceof DenseWeight d ? Panels.rows(d.data(), d.cols(), null) : Panels.nf4Rows((Nf4Tensor) w);
    }
}
