package dev.tornadolora.nn;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;

import java.util.List;

/**
 * DoRA (<a href="https://arxiv.org/abs/2402.09353">Weight-Decomposed Low-Rank Adaptation</a>) as PEFT 0.21 computes
 * it ({@code use_dora=True}, {@code peft/tuners/lora/dora.py}) and torchtune's {@code DoRALinear}: a trainable
 * magnitude m [out] rescales each output row of the adapted weight to
 * <pre>
 *   W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖        (the norm per output row, over the inputs)
 * </pre>
 * PEFT adds {@code (m/‖·‖ − 1)·x·Wᵀ + m/‖·‖·s·(x·Aᵀ)·Bᵀ} to the base output, which is
 * {@code y = g ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ) + b} with g = m / ‖W + s·B·A‖: the LoRA kernels' output less the bias,
 * scaled per column. The norm is detached in backward (section 4.3 of the paper, {@code weight_norm.detach()} in
 * PEFT): dm = Σ_tokens dy ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) / ‖·‖, and A, B and x see dy ⊙ g. With an NF4 base the norm is taken
 * of the dequantized weight (PEFT's {@code dequantize_module_weight}). m starts as ‖W + s·B·A‖, so a fresh layer
 * equals its base. PEFT's key is {@code <module>.lora_magnitude_vector}; torchtune's parameter is
 * {@code magnitude}.
 *
 * <p>Dropout in training, as PEFT: with x_d = dropout(x), {@code y = x·Wᵀ + b + (g − 1) ⊙ x_d·Wᵀ + g ⊙ s·x_d·Aᵀ·Bᵀ}
 * (PEFT recomputes the base product on x_d for the magnitude term), three kernel calls instead of one.
 */
public final class DoRA implements AdapterVariant {
    /** torchtune's name of the magnitude parameter. */
    public static final String MAGNITUDE = "magnitude";

    private final int outDim;
    private float[] magnitude;
    private float[] grad;

    /**
     * The kernels' activations (LoRA on x, or on x_d with base(x) and base(x_d) beside it under dropout), the mask,
     * x·Wᵀ + s·x·Aᵀ·Bᵀ (of x_d under dropout) and the detached norm.
     */
    private record Saved(LayerKernels.Activations lora, LayerKernels.Activations baseX, LayerKernels.Activations baseXd,
                         float[] mask, float[] unscaled, float[] norm) {}

    DoRA(int outDim) {
        this.outDim = outDim;
        this.magnitude = new float[outDim];
        this.grad = new float[outDim];
    }

    @Override
    public String name() {
        return "dora";
    }

    /** The live magnitude vector m [out]. */
    public float[] magnitude() {
        return magnitude;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(new Parameter(MAGNITUDE, new int[] {outDim}, magnitude, grad));
    }

    /** The L2 norm of each row of w [rows, cols] (PEFT's {@code torch.linalg.norm(weight, dim=1)}), summed in double. */
    public static float[] rowNorms(float[] w, int rows, int cols) {
        float[] norm = new float[rows];
        for (int o = 0; o < rows; o++) {
            double sq = 0;
            for (int j = o * cols, end = j + cols; j < end; j++) sq += (double) w[j] * w[j];
            norm[o] = (float) Math.sqrt(sq);
        }
        return norm;
    }

    /** ‖W + s·B·A‖ per output row, W dequantized when NF4, from the explicit sum (the reference; init and merge). */
    private static float[] weightNorm(LoRALinear l) {
        return rowNorms(l.loraWeight(), l.outDim(), l.inDim());
    }

    /** ‖W_o‖² per row of a base, kept while the layer's base is this object (bases are replaced, never changed). */
    private record BaseSquares(Object base, double[] squares) {}

    private volatile BaseSquares baseSquares;

    /**
     * ‖W + s·B·A‖ per output row without forming W + s·B·A (PEFT does, once per forward, at out·in·rank cost):
     * ‖W_o‖² + 2s·Σ_k B[o,k]·(A·Wᵀ)[k,o] + s²·B_o·(A·Aᵀ)·B_oᵀ, where A·Wᵀ is one forward of the layer's own
     * kernels on the rank rows of A (any backend, its schedule) and ‖W_o‖² is kept per base.
     */
    private float[] weightNorm(LoRALinear l, LayerKernels k) {
        int in = l.inDim(), r = l.rank();
        double s = l.scale();
        float[] a = l.loraA(), b = l.loraB(), bias = l.bias();
        float[] aw = new float[r * outDim];
        k.forward(a, null, r, null, aw);  // A·Wᵀ + bias, [rank, out]
        double[] gram = new double[r * r];
        for (int i = 0; i < r; i++) {
            for (int j = i; j < r; j++) {
                double dot = 0;
                for (int c = 0; c < in; c++) dot += (double) a[i * in + c] * a[j * in + c];
                gram[i * r + j] = dot;
                gram[j * r + i] = dot;
            }
        }
        double[] wsq = baseSquares(l);
        float[] norm = new float[outDim];
        for (int o = 0; o < outDim; o++) {
            double sq = wsq[o], cross = 0, lora = 0;
            for (int i = 0; i < r; i++) {
                double bi = b[o * r + i];
                cross += bi * (aw[i * outDim + o] - (bias == null ? 0f : bias[o]));
                double row = 0;
                for (int j = 0; j < r; j++) row += gram[i * r + j] * b[o * r + j];
                lora += bi * row;
            }
            norm[o] = (float) Math.sqrt(Math.max(0, sq + 2 * s * cross + s * s * lora));
        }
        return norm;
    }

    private double[] baseSquares(LoRALinear l) {
        BaseSquares c = baseSquares;
        if (c != null && c.base() == l.base()) return c.squares();
        int in = l.inDim(), chunk = Math.max(1, (1 << 20) / in);
        double[] sq = new double[outDim];
        float[] rows = new float[Math.min(chunk, outDim) * in];
        for (int o0 = 0; o0 < outDim; o0 += chunk) {
            int n = Math.min(chunk, outDim - o0);
            l.base().decodeRows(o0, n, rows);
            for (int o = 0; o < n; o++) {
                double acc = 0;
                for (int j = o * in, end = j + in; j < end; j++) acc += (double) rows[j] * rows[j];
                sq[o0 + o] = acc;
            }
        }
        baseSquares = new BaseSquares(l.base(), sq);
        return sq;
    }

    @Override
    public Object forward(LoRALinear layer, LayerKernels k, float[] x, float[] mask, int tokens, Adapters adapters,
                          float[] y) {
        float[] norm = weightNorm(layer, k);
        float[] bias = layer.bias();
        if (mask == null) {
            // y = g ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b: the LoRA kernels' output, less the bias, scaled per column
            LayerKernels.Activations act = k.forward(x, null, tokens, adapters, y);
            float[] unscaled = new float[y.length];
            for (int t = 0; t < tokens; t++) {
                for (int o = 0, i = t * outDim; o < outDim; o++, i++) {
                    float b = bias == null ? 0f : bias[o];
                    unscaled[i] = y[i] - b;
                    y[i] = magnitude[o] / norm[o] * unscaled[i] + b;
                }
            }
            return new Saved(act, null, null, null, unscaled, norm);
        }
        // PEFT with dropout in training: y = x·Wᵀ + b + (g − 1) ⊙ x_d·Wᵀ + g ⊙ s·x_d·Aᵀ·Bᵀ, x_d = x ⊙ mask,
        // as three kernel calls: base(x), LoRA(x_d) and base(x_d).
        float[] xd = new float[x.length];
        for (int i = 0; i < x.length; i++) xd[i] = x[i] * mask[i];
        float[] lora = new float[y.length], base = new float[y.length];
        LayerKernels.Activations baseX = k.forward(x, null, tokens, null, y);
        LayerKernels.Activations loraXd = k.forward(xd, null, tokens, adapters, lora);
        LayerKernels.Activations baseXd = k.forward(xd, null, tokens, null, base);
        float[] unscaled = new float[y.length];
        for (int t = 0; t < tokens; t++) {
            for (int o = 0, i = t * outDim; o < outDim; o++, i++) {
                float b = bias == null ? 0f : bias[o];
                unscaled[i] = lora[i] - b;
                y[i] += magnitude[o] / norm[o] * unscaled[i] - (base[i] - b);
            }
        }
        return new Saved(loraXd, baseX, baseXd, mask, unscaled, norm);
    }

    @Override
    public void backward(LoRALinear layer, LayerKernels k, Object saved, float[] dy, float[] dx, Adapters adapters,
                         Adapters grads) {
        Saved s = (Saved) saved;
        float[] scaled = new float[dy.length];
        double[] dm = new double[outDim];
        int tokens = dy.length / outDim;
        for (int t = 0; t < tokens; t++) {
            for (int o = 0, i = t * outDim; o < outDim; o++, i++) {
                dm[o] += (double) dy[i] * s.unscaled[i];
                scaled[i] = dy[i] * (magnitude[o] / s.norm[o]);
            }
        }
        for (int o = 0; o < outDim; o++) grad[o] += (float) (dm[o] / s.norm[o]);
        if (s.mask == null) {
            k.backward(s.lora, scaled, dx, adapters, grads);
            return;
        }
        float[] dxd = dx == null ? null : new float[dx.length], dxBase = dx == null ? null : new float[dx.length];
        k.backward(s.lora, scaled, dxd, adapters, grads);
        float[] negated = new float[dy.length];
        for (int i = 0; i < dy.length; i++) negated[i] = -dy[i];
        k.backward(s.baseXd, negated, dxBase, null, null);
        k.backward(s.baseX, dy, dx, null, null);
        if (dx != null) {
            for (int i = 0; i < dx.length; i++) dx[i] += s.mask[i] * (dxd[i] + dxBase[i]);
        }
    }

    @Override
    public void merge(LoRALinear layer, float[] merged) {
        int in = layer.inDim();
        float[] norm = rowNorms(merged, outDim, in);
        for (int o = 0; o < outDim; o++) {
            float g = magnitude[o] / norm[o];
            for (int j = o * in, end = j + in; j < end; j++) merged[j] *= g;
        }
    }

    @Override
    public void initialize(LoRALinear layer) {
        System.arraycopy(weightNorm(layer), 0, magnitude, 0, outDim);
    }

    @Override
    public void zeroGrad() {
        java.util.Arrays.fill(grad, 0f);
    }

    @Override
    public AdapterVariant fresh(LoRALinear layer) {
        return new DoRA(outDim);
    }
}
