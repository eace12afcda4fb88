package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/**
 * The reference: the math of {@link LoraKernels} as plain loops, one thread, double accumulators. Every other
 * backend is tested against it. The base weight is decoded one row at a time, so even here a quantized weight
 * is never held whole in fp32. The token range methods let the multi-threaded JVM backend reuse it.
 */
public final class ScalarLoraKernels implements LoraKernels {

    public static final ScalarLoraKernels INSTANCE = new ScalarLoraKernels();

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
        forwardTokens(p, x, m, 0, tokens, h, y);
    }

    @Override
    public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy,
                         float[] dx, float[] gradA, float[] gradB) {
        if (gradA != null) {
            adapterGradients(p, x, m, 0, tokens, h, dy, gradA, gradB);
        }
        if (dx != null) {
            inputGradientTokens(p, m, 0, tokens, dy, dx, gradA != null);
        }
    }

    /** Forward for tokens {@code [t0, t1)}. */
    public static void forwardTokens(LoraParams p, float[] x, float[] m, int t0, int t1, float[] h, float[] y) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        float[] a = p.loraA(), b = p.loraB(), bias = p.bias();
        if (h != null) {
            for (int t = t0; t < t1; t++) {
                for (int k = 0; k < r; k++) {
                    double acc = 0;
                    for (int i = 0; i < in; i++) {
                        acc += (double) dropped(x, m, t * in + i) * a[k * in + i];
                    }
                    h[t * r + k] = (float) acc;
                }
            }
        }
        BaseWeight w = p.base();
        float[] row = new float[in];
        for (int j = 0; j < out; j++) {
            w.decodeRows(j, 1, row);
            for (int t = t0; t < t1; t++) {
                double acc = bias == null ? 0 : bias[j];
                for (int i = 0; i < in; i++) {
                    acc += (double) x[t * in + i] * row[i];
                }
                if (h != null) {
                    double lora = 0;
                    for (int k = 0; k < r; k++) {
                        lora += (double) h[t * r + k] * b[j * r + k];
                    }
                    acc += p.scale() * lora;
                }
                y[t * out + j] = (float) acc;
            }
        }
    }

    /** dB += s·dyᵀ·h and dA += dhᵀ·(x⊙m) with dh = s·dy·B, over tokens {@code [t0, t1)}. */
    public static void adapterGradients(LoraParams p, float[] x, float[] m, int t0, int t1, float[] h, float[] dy,
                                 float[] gradA, float[] gradB) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        double s = p.scale();
        for (int j = 0; j < out; j++) {
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int t = t0; t < t1; t++) {
                    acc += (double) dy[t * out + j] * h[t * r + k];
                }
                gradB[j * r + k] += (float) (s * acc);
            }
        }
        float[] dh = loraInputGradient(p, t0, t1, dy);
        for (int k = 0; k < r; k++) {
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int t = t0; t < t1; t++) {
                    acc += (double) dh[(t - t0) * r + k] * dropped(x, m, t * in + i);
                }
                gradA[k * in + i] += (float) acc;
            }
        }
    }

    /** dx = dy·W (+ (dh·A)⊙m when the adapters are enabled) for tokens {@code [t0, t1)}. */
    public static void inputGradientTokens(LoraParams p, float[] m, int t0, int t1, float[] dy, float[] dx,
                                    boolean adapters) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        int n = t1 - t0;
        double[] acc = new double[n * in];
        float[] row = new float[in];
        for (int j = 0; j < out; j++) {
            p.base().decodeRows(j, 1, row);
            for (int t = 0; t < n; t++) {
                double g = dy[(t0 + t) * out + j];
                for (int i = 0; i < in; i++) {
                    acc[t * in + i] += g * row[i];
                }
            }
        }
        float[] dh = adapters ? loraInputGradient(p, t0, t1, dy) : null;
        float[] a = p.loraA();
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < in; i++) {
                double v = acc[t * in + i];
                if (dh != null) {
                    double lora = 0;
                    for (int k = 0; k < r; k++) {
                        lora += (double) dh[t * r + k] * a[k * in + i];
                    }
                    v += m == null ? lora : lora * m[(t0 + t) * in + i];
                }
                dx[(t0 + t) * in + i] = (float) v;
            }
        }
    }

    /** dh = s·dy·B for tokens {@code [t0, t1)}, indexed from 0. */
    private static float[] loraInputGradient(LoraParams p, int t0, int t1, float[] dy) {
        int out = p.outDim(), r = p.rank();
        float[] b = p.loraB();
        float[] dh = new float[(t1 - t0) * r];
        for (int t = t0; t < t1; t++) {
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int j = 0; j < out; j++) {
                    acc += (double) dy[t * out + j] * b[j * r + k];
                }
                dh[(t - t0) * r + k] = (float) (p.scale() * acc);
            }
        }
        return dh;
    }

    private static float dropped(float[] x, float[] m, int idx) {
        return m == null ? x[idx] : x[idx] * m[idx];
    }
}
