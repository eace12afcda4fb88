package dev.tornadolora.kernels;

import dev.tornadolora.tensor.BaseWeight;

/**
 * The reference: the math of {@link LayerKernels} as plain loops, one thread, double accumulators. Every other
 * backend is tested against it. The base weight is decoded one row at a time, so even here a quantized weight
 * is never held whole in fp32. Binding keeps nothing but the arguments. The static methods are the math over a
 * range of tokens and features, so that the scalar multi-threaded fallback ({@code jvm} without the Vector API)
 * runs this very code.
 */
public final class ScalarLoraKernels implements LoraBackend {

    public static final ScalarLoraKernels INSTANCE = new ScalarLoraKernels();

    private ScalarLoraKernels() {}

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
        return layer(new LayerSpec(base, bias, rank, scale), new Parallel(1));
    }

    /**
     * The reference's loops as a binding on {@code par}'s threads: the base product split over output features
     * (forward) and input features (dx); the rank-sized parts on the calling thread. Each element is computed by
     * the same loop whatever the threads, so the results are the reference's bit for bit.
     */
    public static LayerKernels layer(LayerSpec spec, Parallel par) {
        return new HostLayer(spec) {
            @Override
            protected void forward(float[] x, float[] m, int tokens, Adapters ad, float[] h, float[] y) {
                if (ad != null) {
                    down(spec, ad, x, m, 0, tokens, h);
                }
                par.range(spec.outDim(), 16, (j0, j1) -> baseAndUpdate(spec, ad, x, 0, tokens, j0, j1, h, y));
            }

            @Override
            protected void backward(HostActivations s, float[] dy, float[] dx, Adapters ad, Adapters grads) {
                float[] dh = ad == null ? null : loraInputGradient(spec, ad, 0, s.tokens(), dy);
                if (grads != null) {
                    adapterGradients(spec, s.x(), s.mask(), 0, s.tokens(), s.h(), dy, dh, grads);
                }
                if (dx != null) {
                    // One slice of dx per thread: each slice decodes every row of W once.
                    int slice = Math.max(64, (spec.inDim() + par.size() - 1) / par.size());
                    par.range(spec.inDim(), slice, (i0, i1) ->
                            inputGradient(spec, ad, s.mask(), 0, s.tokens(), i0, i1, dy, dh, dx));
                }
            }
        };
    }

    /** h = (x⊙m)·Aᵀ for tokens {@code [t0, t1)}. */
    public static void down(LayerSpec p, Adapters ad, float[] x, float[] m, int t0, int t1, float[] h) {
        int in = p.inDim(), r = p.rank();
        float[] a = ad.a();
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

    /**
     * y = x·Wᵀ + b + s·h·Bᵀ for tokens {@code [t0, t1)} and output features {@code [j0, j1)}, with h computed
     * ({@code ad == null}: the base alone).
     */
    public static void baseAndUpdate(LayerSpec p, Adapters ad, float[] x, int t0, int t1, int j0, int j1,
                                     float[] h, float[] y) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        float[] b = ad == null ? null : ad.b(), bias = p.bias();
        BaseWeight w = p.base();
        float[] row = new float[in];
        for (int j = j0; j < j1; j++) {
            w.decodeRows(j, 1, row);
            for (int t = t0; t < t1; t++) {
                double acc = bias == null ? 0 : bias[j];
                for (int i = 0; i < in; i++) {
                    acc += (double) x[t * in + i] * row[i];
                }
                if (b != null) {
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

    /**
     * dB += s·dyᵀ·h and dA += dhᵀ·(x⊙m) over tokens {@code [t0, t1)}, with dh = s·dy·B from
     * {@link #loraInputGradient} (indexed from t0).
     */
    public static void adapterGradients(LayerSpec p, float[] x, float[] m, int t0, int t1, float[] h, float[] dy,
                                        float[] dh, Adapters grads) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        double s = p.scale();
        float[] gradA = grads.a(), gradB = grads.b();
        for (int j = 0; j < out; j++) {
            for (int k = 0; k < r; k++) {
                double acc = 0;
                for (int t = t0; t < t1; t++) {
                    acc += (double) dy[t * out + j] * h[t * r + k];
                }
                gradB[j * r + k] += (float) (s * acc);
            }
        }
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

    /**
     * dx = dy·W (+ (dh·A)⊙m when the adapters are on, dh from {@link #loraInputGradient} indexed from t0) for
     * tokens {@code [t0, t1)} and input features {@code [i0, i1)}.
     */
    public static void inputGradient(LayerSpec p, Adapters ad, float[] m, int t0, int t1, int i0, int i1,
                                     float[] dy, float[] dh, float[] dx) {
        int in = p.inDim(), out = p.outDim(), r = p.rank();
        int n = t1 - t0, width = i1 - i0;
        double[] acc = new double[n * width];
        float[] row = new float[in];
        for (int j = 0; j < out; j++) {
            p.base().decodeRows(j, 1, row);
            for (int t = 0; t < n; t++) {
                double g = dy[(t0 + t) * out + j];
                for (int i = i0; i < i1; i++) {
                    acc[t * width + i - i0] += g * row[i];
                }
            }
        }
        for (int t = 0; t < n; t++) {
            for (int i = i0; i < i1; i++) {
                double v = acc[t * width + i - i0];
                if (ad != null) {
                    double lora = 0;
                    for (int k = 0; k < r; k++) {
                        lora += (double) dh[t * r + k] * ad.a()[k * in + i];
                    }
                    v += m == null ? lora : lora * m[(t0 + t) * in + i];
                }
                dx[(t0 + t) * in + i] = (float) v;
            }
        }
    }

    /** dh = s·dy·B for tokens {@code [t0, t1)}, indexed from 0. */
    public static float[] loraInputGradient(LayerSpec p, Adapters ad, int t0, int t1, float[] dy) {
        int out = p.outDim(), r = p.rank();
        float[] b = ad.b();
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
