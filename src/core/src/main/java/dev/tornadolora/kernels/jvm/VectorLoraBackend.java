package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.HostActivations;
import dev.tornadolora.kernels.HostLayer;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LayerSpec;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;

import java.util.Arrays;

import static dev.tornadolora.kernels.jvm.Gemm.Left;
import static dev.tornadolora.kernels.jvm.Gemm.Term;

/**
 * The default CPU backend: the math of {@link LayerKernels} on {@code jdk.incubator.vector} and all cores
 * ({@link Parallel}). Every product of more than {@link #GEMV_MAX_TOKENS} tokens runs on one packed GEMM
 * ({@link Gemm}); the base matmul and the LoRA update are two terms of one pass, so the update is added while
 * the output tile is in registers. The rank-r products, whose results are r wide, run unpacked on
 * {@link NarrowGemm} up to r = 2 vectors (on a packed GEMM they ran at a tenth of the big products' rate):
 *
 * <pre>
 *   forward    h  = (x⊙m)·Aᵀ                  NarrowGemm.rowDots (r &gt; 2 vectors: GEMM, B = Aᵀ)
 *              y  = b + x·Wᵀ + (s·h)·Bᵀ        GEMM, two terms; Wᵀ (fp32: packed once per binding; NF4, BF16, F16: decoded per panel)
 *   backward   dB += (s·dy)ᵀ·h                 NarrowGemm.transposedTimes (or GEMM, A operand = dyᵀ by strides)
 *              dh  = (s·dy)·B                  NarrowGemm.rowDots with Bᵀ (or GEMM)
 *              dA += dhᵀ·(x⊙m)                 NarrowGemm.transposedTimes, as (x⊙m)ᵀ·dh transposed (or GEMM)
 *              dx  = dy·W + dh·A               GEMM, two terms; W read natural
 *                    (with dropout: dx = dy·W, then dx += (dh·A)⊙m, the multiplier applied on the tile)
 * </pre>
 *
 * For 1..{@link #GEMV_MAX_TOKENS} tokens both passes are matrix-vector products that read W once, row by row
 * ({@link Gemv}): forward dots rows of W with the tokens, backward scales rows of W into dx.
 *
 * <p>A binding owns the packed Wᵀ panels of an fp32 base (made on the first call that needs them, one more copy
 * of the weight; {@link JvmOptions#packWeights()} off reads W in place instead). Loaded only by
 * {@link JvmBackends} when {@code jdk.incubator.vector} is readable.
 */
final class VectorLoraBackend implements LoraBackend {

    /** Up to this many tokens both passes read W row by row instead of packing panels. */
    static final int GEMV_MAX_TOKENS = 8;

    private final Parallel par;
    /** The kernels' scratch, owned here: per worker, and the packed left operands of GEMMs in flight. */
    private final Workspaces ws;
    private final boolean packWeights;

    VectorLoraBackend(Parallel par, boolean packWeights) {
        this.par = par;
        this.ws = new Workspaces(par);
        this.packWeights = packWeights;
    }

    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
        return new Layer(new LayerSpec(base, bias, rank, scale));
    }

    @Override
    public String toString() {
        return "jvm (Vector API, " + par.size() + " threads)";
    }

    private final class Layer extends HostLayer {
        private volatile float[] packedTransposed;

        Layer(LayerSpec spec) {
            super(spec);
        }

        @Override
        protected void forward(float[] x, float[] m, int tokens, Adapters ad, float[] h, float[] y) {
            LayerSpec p = spec;
            int in = p.inDim(), out = p.outDim(), r = p.rank();
            if (tokens <= GEMV_MAX_TOKENS) {
                forwardFewTokens(p, ad, x, m, tokens, h, y);
                return;
            }
            if (ad != null && r <= NarrowGemm.MAX_WIDTH) {  // h = (x⊙m)·Aᵀ, dots of x's rows with A's
                NarrowGemm.rowDots(par, tokens, r, in, dropped(x, m, tokens * in), in, ad.a(), in, 1f, h);
            } else if (ad != null) {
                Arrays.fill(h, 0, tokens * r, 0f);
                Gemm.multiplyAdd(ws, tokens, r, h, r,
                        new Term(Left.rows(x, in).times(m), Panels.transposed(ad.a(), in), in));
            }
            fillRows(y, tokens, out, p.bias());
            Term base = new Term(Left.rows(x, in), transposed(), in);
            if (ad == null) {
                Gemm.multiplyAdd(ws, tokens, out, y, out, base);
            } else {
                Gemm.multiplyAdd(ws, tokens, out, y, out, base,
                        new Term(Left.rows(h, r).scaled(p.scale()), Panels.transposed(ad.b(), r), r));
            }
        }

        @Override
        protected void backward(HostActivations saved, float[] dy, float[] dx, Adapters ad, Adapters grads) {
            LayerSpec p = spec;
            float[] x = saved.x(), m = saved.mask(), h = saved.h();
            int tokens = saved.tokens();
            if (tokens <= GEMV_MAX_TOKENS) {
                backwardFewTokens(p, ad, x, m, tokens, h, dy, dx, grads);
                return;
            }
            int in = p.inDim(), out = p.outDim(), r = p.rank();
            float s = p.scale();
            float[] dh = null;
            if (ad != null && r <= NarrowGemm.MAX_WIDTH) {
                if (grads != null) {  // dB += s·dyᵀ·h
                    NarrowGemm.transposedTimes(par, out, r, tokens, dy, null, out, s, h, grads.b());
                }
                dh = new float[tokens * r];  // dh = s·dy·B, as dots of dy's rows with Bᵀ's
                NarrowGemm.rowDots(par, tokens, r, out, dy, out, transpose(ad.b(), out, r), out, s, dh);
                if (grads != null) {  // dA += dhᵀ·(x⊙m), made as its transpose (x⊙m)ᵀ·dh
                    float[] gradAt = new float[in * r];
                    NarrowGemm.transposedTimes(par, in, r, tokens, x, m, in, 1f, dh, gradAt);
                    addTransposed(gradAt, in, r, grads.a());
                }
            } else if (ad != null) {
                if (grads != null) {
                    Gemm.multiplyAdd(ws, out, r, grads.b(), r,
                            new Term(Left.transposed(dy, out).scaled(s), Panels.rows(h, r, null), tokens));
                }
                dh = new float[tokens * r];
                Gemm.multiplyAdd(ws, tokens, r, dh, r,
                        new Term(Left.rows(dy, out).scaled(s), Panels.rows(ad.b(), r, null), out));
                if (grads != null) {
                    Gemm.multiplyAdd(ws, r, in, grads.a(), in,
                            new Term(Left.transposed(dh, r), Panels.rows(x, in, m), tokens));
                }
            }
            if (dx == null) {
                return;
            }
            Arrays.fill(dx, 0, tokens * in, 0f);
            Term base = new Term(Left.rows(dy, out), natural(p.base()), out);
            if (dh == null) {
                Gemm.multiplyAdd(ws, tokens, in, dx, in, base);
            } else {
                Term lora = new Term(Left.rows(dh, r), Panels.rows(ad.a(), in, null), r);
                if (m == null) {
                    Gemm.multiplyAdd(ws, tokens, in, dx, in, base, lora);
                } else {
                    Gemm.multiplyAdd(ws, tokens, in, dx, in, base);
                    Gemm.multiplyAdd(ws, tokens, in, dx, in, m, lora);
                }
            }
        }

        /** Wᵀ [in × out] as a GEMM right operand (forward); fp32 panels packed on first use and kept. */
        private Gemm.Right transposed() {
            return switch (spec.base()) {
                case DenseWeight d when packWeights -> {
                    float[] panels = packedTransposed;
                    if (panels == null) {
                        synchronized (this) {
                            panels = packedTransposed;
                            if (panels == null) {
                                packedTransposed = panels = Panels.packTransposed(ws, d.data(), d.cols());
                            }
                        }
                    }
                    yield Panels.transposedPacked(d.data(), d.cols(), panels);
                }
                case DenseWeight d -> Panels.transposed(d.data(), d.cols());
                case HalfWeight h -> Panels.decodedTransposed(h);
                case Nf4Tensor q -> Panels.decodedTransposed(q);
            };
        }

        @Override
        public void close() {
            packedTransposed = null;
            super.close();
        }
    }

    /** y = b + x·Wᵀ + s·h·Bᵀ row by row of W, for a handful of tokens. */
    private void forwardFewTokens(LayerSpec p, Adapters ad, float[] x, float[] m, int tokens, float[] h, float[] y) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        if (ad != null) {
            Gemv.rows(ad.a(), in, dropped(x, m, tokens * in), tokens, 0, r, h, r);
        }
        BaseWeight w = p.base();
        float[] bias = p.bias(), b = ad == null ? null : ad.b();
        float s = p.scale();
        boolean inRegisters = tokens == 1 && w instanceof Nf4Tensor q && Gemv.decodesInRegisters(q);
        float[] xd = inRegisters ? Nf4Decoder.deinterleave(x, 0, in) : null;
        ws.range(out, 64, (j0, j1, scratch) -> {
            if (w instanceof DenseWeight d) {
                Gemv.rows(d.data(), in, x, tokens, j0, j1, y, out);
            } else if (inRegisters) {
                Gemv.rowsDecoded((Nf4Tensor) w, xd, j0, j1, y);
            } else if (tokens == 1 && w instanceof HalfWeight hw && hw.format() == HalfWeight.Format.BF16) {
                Gemv.rowsBf16(hw, x, j0, j1, y);  // decoding a BF16 checkpoint: 2 bytes a weight, widened in registers
            } else {
                Gemv.rows(w, x, tokens, j0, j1, y, out, scratch);
            }
            for (int t = 0; t < tokens; t++) {
                for (int j = j0; j < j1; j++) {
                    float v = y[t * out + j];
                    if (bias != null) {
                        v += bias[j];
                    }
                    if (b != null) {
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
    private void backwardFewTokens(LayerSpec p, Adapters ad, float[] x, float[] m, int tokens, float[] h,
                                   float[] dy, float[] dx, Adapters grads) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        float s = p.scale();
        float[] a = ad == null ? null : ad.a(), b = ad == null ? null : ad.b();
        float[] gradA = grads == null ? null : grads.a(), gradB = grads == null ? null : grads.b();
        float[] dh = null;
        if (ad != null) {
            dh = new float[tokens * r];
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < out; j++) {
                    float g = s * dy[t * out + j];
                    if (gradB != null) {
                        Gemv.axpy(g, h, t * r, gradB, j * r, r); // dB[j, :] += s·dy[t, j]·h[t, :]
                    }
                    Gemv.axpy(g, b, j * r, dh, t * r, r);        // dh[t, :] += s·dy[t, j]·B[j, :]
                }
            }
        }
        if (gradA != null) {
            float[] xm = dropped(x, m, tokens * in);
            float[] dhs = dh;
            par.range(r, 1, (k0, k1) -> {
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
        float[] dense = p.base() instanceof DenseWeight d ? d.data() : null;
        BaseWeight coded = dense == null ? p.base() : null;
        float[] lora = dh != null && m != null ? new float[tokens * in] : null;
        float[] dhs = dh;
        if (tokens == 1) {  // dx = dy·W as a GEMV over W's rows, as the forward reads them
            Gemv.transposedRow(ws, dense, coded, out, in, dy, dx);
        }
        ws.range(in, Gemv.COLUMN_BLOCK, (i0, i1, scratch) -> {
            if (tokens > 1) {
                for (int t = 0; t < tokens; t++) {
                    Arrays.fill(dx, t * in + i0, t * in + i1, 0f);
                }
                Gemv.columns(dense, coded, out, in, dy, out, tokens, i0, i1, dx, in, scratch);
            }
            if (dhs != null) {  // + (dh·A)⊙m
                float[] target = lora == null ? dx : lora;
                Gemv.columns(a, null, r, in, dhs, r, tokens, i0, i1, target, in, scratch);
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

    /** The transpose [cols × rows] of a row-major [rows × cols] matrix. */
    private static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        return t;
    }

    /** c [cols × rows] += tᵀ for t [rows × cols]. */
    private static void addTransposed(float[] t, int rows, int cols, float[] c) {
        for (int j = 0; j < cols; j++) {
            for (int i = 0; i < rows; i++) {
                c[j * rows + i] += t[i * cols + j];
            }
        }
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

    /** W [out × in] as a GEMM right operand (backward). */
    private static Gemm.Right natural(BaseWeight w) {
        return switch (w) {
            case DenseWeight d -> Panels.rows(d.data(), d.cols(), null);
            case HalfWeight h -> Panels.decodedRows(h);
            case Nf4Tensor q -> Panels.decodedRows(q);
        };
    }
}
