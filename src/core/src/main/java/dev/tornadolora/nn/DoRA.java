package dev.tornadolora.nn;

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
 * <p>Dropout: PEFT recomputes the base product on the dropped-out input for DoRA in training; that is not done
 * here, so a training forward with dropout is refused.
 */
public final class DoRA implements AdapterVariant {
    /** torchtune's name of the magnitude parameter. */
    public static final String MAGNITUDE = "magnitude";

    private final int outDim;
    private float[] magnitude;
    private float[] grad;

    private record Saved(float[] unscaled, float[] norm) {}

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

    /** ‖W + s·B·A‖ per output row, W dequantized when NF4. */
    private static float[] weightNorm(LoRALinear l) {
        return rowNorms(l.loraWeight(), l.outDim(), l.inDim());
    }

    @Override
    public Object forward(LoRALinear layer, float[] y, int tokens) {
        float[] norm = weightNorm(layer);
        float[] bias = layer.bias();
        float[] unscaled = new float[y.length];
        for (int t = 0; t < tokens; t++) {
            int row = t * outDim;
            for (int o = 0; o < outDim; o++) {
                float b = bias == null ? 0f : bias[o];
                float u = y[row + o] - b;
                unscaled[row + o] = u;
                y[row + o] = magnitude[o] / norm[o] * u + b;
            }
        }
        return new Saved(unscaled, norm);
    }

    @Override
    public float[] backward(LoRALinear layer, Object saved, float[] dy, int tokens) {
        Saved s = (Saved) saved;
        float[] scaled = new float[dy.length];
        double[] dm = new double[outDim];
        for (int t = 0; t < tokens; t++) {
            int row = t * outDim;
            for (int o = 0; o < outDim; o++) {
                float d = dy[row + o];
                dm[o] += (double) d * s.unscaled[row + o];
                scaled[row + o] = d * (magnitude[o] / s.norm[o]);
            }
        }
        for (int o = 0; o < outDim; o++) grad[o] += (float) (dm[o] / s.norm[o]);
        return scaled;
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
