package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.llama.RopeScaling;

/**
 * Rotary position embedding in Hugging Face's convention ({@code rotate_half} over the two halves of head_dim),
 * with the frequencies computed in fp32 as {@code LlamaRotaryEmbedding} does:
 * <pre>
 *   inv_freq[i] = 1 / θ^(2i / d)               i &lt; d/2   (then llama3-scaled, see {@link RopeScaling})
 *   c, s        = cos, sin(p · inv_freq[i])     for position p, both halves alike (cat(freqs, freqs))
 *   y[i]        = x[i]·c − x[i + d/2]·s
 *   y[i + d/2]  = x[i + d/2]·c + x[i]·s
 *   dx          = the same rotation with −s (the transpose)
 * </pre>
 * Positions are 0 … seq−1 in every sequence, as transformers uses without {@code position_ids}, or the given
 * {@code position_ids} per token (packed rows restart at 0 for every example).
 */
public final class Rope {
    private final int headDim;
    private final float[] invFreq;

    public Rope(int headDim, double theta, RopeScaling scaling) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be positive and even, got " + headDim);
        }
        this.headDim = headDim;
        this.invFreq = inverseFrequencies(headDim, theta, scaling);
    }

    /** HF's inverse frequencies, fp32 arithmetic in torch's order. */
    static float[] inverseFrequencies(int dim, double theta, RopeScaling scaling) {
        int half = dim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            float e = (float) (2 * i) / (float) dim;
            inv[i] = 1.0f / (float) StrictMath.pow(theta, e);
        }
        if (scaling != null) {
            float factor = (float) scaling.factor();
            float low = (float) scaling.lowFreqFactor(), high = (float) scaling.highFreqFactor();
            float old = scaling.originalMaxPositionEmbeddings();
            float lowWavelen = old / low, highWavelen = old / high;
            for (int i = 0; i < half; i++) {
                float wavelen = (float) (2 * Math.PI) / inv[i];
                float llama = wavelen > lowWavelen ? inv[i] / factor : inv[i];
                boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
                if (medium) {
                    float smooth = (old / wavelen - low) / (high - low);
                    llama = (1 - smooth) * llama / factor + smooth * llama;
                }
                inv[i] = llama;
            }
        }
        return inv;
    }

    public float[] inverseFrequencies() {
        return invFreq.clone();
    }

    /**
     * cos and sin per position and frequency, [rows, d/2] each; token t sits at position {@code positions[t]}, or
     * at t mod seq when {@code positions} is null.
     */
    public record Tables(int seq, int half, float[] cos, float[] sin, int[] positions) {
        int position(int token) {
            return positions == null ? token % seq : positions[token];
        }
    }

    public Tables tables(int seq) {
        return tables(seq, null);
    }

    /** Tables for the tokens' {@code positions} [B·S] ({@code position_ids}; null: 0 … seq−1 in every row). */
    public Tables tables(int seq, int[] positions) {
        int half = headDim / 2, rows = seq;
        if (positions != null) {
            for (int p : positions) {
                if (p < 0) throw new IllegalArgumentException("position ids must be >= 0, got " + p);
                rows = Math.max(rows, p + 1);
            }
        }
        float[] c = new float[rows * half], s = new float[rows * half];
        for (int p = 0; p < rows; p++) {
            for (int i = 0; i < half; i++) {
                float f = (float) p * invFreq[i];
                c[p * half + i] = (float) StrictMath.cos(f);
                s[p * half + i] = (float) StrictMath.sin(f);
            }
        }
        return new Tables(seq, half, c, s, positions);
    }

    /**
     * Rotates x [tokens, heads·d] in place (token t at position t mod seq); {@code inverse} applies the transpose,
     * which is the backward.
     */
    public void apply(Parallel par, float[] x, int tokens, int heads, Tables t, boolean inverse) {
        int half = t.half(), width = heads * headDim;
        float sign = inverse ? -1f : 1f;
        par.range(tokens, Math.max(1, 8192 / width), (t0, t1) -> {
            for (int tok = t0; tok < t1; tok++) {
                int p = t.position(tok) * half;
                for (int h = 0; h < heads; h++) {
                    int o = tok * width + h * headDim;
                    for (int i = 0; i < half; i++) {
                        float c = t.cos()[p + i], s = sign * t.sin()[p + i];
                        float x1 = x[o + i], x2 = x[o + i + half];
                        x[o + i] = x1 * c - x2 * s;
                        x[o + i + half] = x2 * c + x1 * s;
                    }
                }
            }
        });
    }

    /** The scalar statement in double: rotate_half with angles p·inv_freq (fp32 frequencies as in HF). */
    public double[] applyReference(double[] x, int tokens, int heads, int seq) {
        int half = headDim / 2, width = heads * headDim;
        double[] y = new double[x.length];
        for (int tok = 0; tok < tokens; tok++) {
            int p = tok % seq;
            for (int h = 0; h < heads; h++) {
                int o = tok * width + h * headDim;
                for (int i = 0; i < headDim; i++) {
                    double angle = (float) ((float) p * invFreq[i % half]);
                    double rotated = i < half ? -x[o + i + half] : x[o + i - half];
                    y[o + i] = x[o + i] * (float) Math.cos(angle) + rotated * (float) Math.sin(angle);
                }
            }
        }
        return y;
    }
}
