package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The low-rank path of a LoRA layer, with x [T, in], dropout multiplier m [T, in] (read only when
 * {@code sizes[MASK] = 1}), A [rank, in], B [out, rank] and s = alpha / rank:
 * <pre>
 *   forward    h   = (x ⊙ m) · Aᵀ                     {@link #down}
 *              y  += s · h · Bᵀ + bias                 {@link #epilogue}
 *   backward   dB += s · dyᵀ · h                       {@link #gradB}
 *              dh  = s · dy · B                        {@link #gradH}
 *              dA += dhᵀ · (x ⊙ m)                     {@link #gradA}
 *              dx += (dh · A) ⊙ m                      {@link #dxLora}
 * </pre>
 * The rank is small, so each output element is one work-item with its reduction innermost; dimension 0 always
 * runs along the contiguous index. T, the mask switch and the adapter switch come in {@code sizes} ({@link Sizes});
 * loops over tokens run to the plan's {@code capacity} and skip the rows past T. With the adapters off the
 * adapter tasks leave their outputs alone. A and B (and their gradients) start at {@code aOffset}/{@code bOffset}
 * of their arrays: a layer's plan holds them alone (offset 0), the model plan ({@code plan.LlamaDevicePlan}) holds
 * every adapter end to end in one array, so that clipping and AdamW run over one buffer. The sequential reference of all of them is {@code ScalarLoraKernels},
 * the project's oracle.
 */
public final class AdapterKernels {
    private AdapterKernels() {}

    /** xd = x ⊙ m (x itself without a mask), for the schedules that run the down projection as a plain matmul. */
    public static void dropout(FloatArray x, FloatArray mask, FloatArray xd, IntArray sizes, int capacity, int in) {
        for (@Parallel int i = 0; i < capacity * in; i++) {
            if (i < sizes.get(Sizes.TOKENS) * in) {
                float v = x.get(i);
                if (sizes.get(Sizes.MASK) == 1) {
                    v = v * mask.get(i);
                }
                xd.set(i, v);
            }
        }
    }

    public static void down(FloatArray x, FloatArray mask, FloatArray a, FloatArray h, IntArray sizes, int rank,
                            int capacity, int in, int aOffset) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int t = 0; t < capacity; t++) {
                if (t < sizes.get(Sizes.TOKENS) && sizes.get(Sizes.ADAPTERS) == 1) {
                    int useMask = sizes.get(Sizes.MASK);
                    float acc = 0f;
                    for (int i = 0; i < in; i++) {
                        float v = x.get(t * in + i);
                        if (useMask == 1) {
                            v = v * mask.get(t * in + i);
                        }
                        acc += v * a.get(aOffset + r * in + i);
                    }
                    h.set(t * rank + r, acc);
                }
            }
        }
    }

    public static void epilogue(FloatArray y, FloatArray h, FloatArray b, FloatArray bias, IntArray sizes, int out,
                                int capacity, int rank, float scale, int useBias, int bOffset) {
        for (@Parallel int j = 0; j < out; j++) {
            for (@Parallel int t = 0; t < capacity; t++) {
                if (t < sizes.get(Sizes.TOKENS)) {
                    float lora = 0f;
                    if (sizes.get(Sizes.ADAPTERS) == 1) {
                        for (int r = 0; r < rank; r++) {
                            lora += h.get(t * rank + r) * b.get(bOffset + j * rank + r);
                        }
                    }
                    float v = y.get(t * out + j) + scale * lora;
                    if (useBias == 1) {
                        v = v + bias.get(j);
                    }
                    y.set(t * out + j, v);
                }
            }
        }
    }

    public static void gradB(FloatArray dy, FloatArray h, FloatArray gradB, IntArray sizes, int rank, int out,
                             float scale, int bOffset) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int j = 0; j < out; j++) {
                if (sizes.get(Sizes.ADAPTERS) == 1) {
                    int tokens = sizes.get(Sizes.TOKENS);
                    float acc = 0f;
                    for (int t = 0; t < tokens; t++) {
                        acc += dy.get(t * out + j) * h.get(t * rank + r);
                    }
                    gradB.set(bOffset + j * rank + r, gradB.get(bOffset + j * rank + r) + scale * acc);
                }
            }
        }
    }

    public static void gradH(FloatArray dy, FloatArray b, FloatArray dh, IntArray sizes, int rank, int capacity,
                             int out, float scale, int bOffset) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int t = 0; t < capacity; t++) {
                if (t < sizes.get(Sizes.TOKENS) && sizes.get(Sizes.ADAPTERS) == 1) {
                    float acc = 0f;
                    for (int j = 0; j < out; j++) {
                        acc += dy.get(t * out + j) * b.get(bOffset + j * rank + r);
                    }
                    dh.set(t * rank + r, scale * acc);
                }
            }
        }
    }

    public static void gradA(FloatArray dh, FloatArray x, FloatArray mask, FloatArray gradA, IntArray sizes, int in,
                             int rank, int aOffset) {
        for (@Parallel int i = 0; i < in; i++) {
            for (@Parallel int r = 0; r < rank; r++) {
                if (sizes.get(Sizes.ADAPTERS) == 1) {
                    int tokens = sizes.get(Sizes.TOKENS);
                    int useMask = sizes.get(Sizes.MASK);
                    float acc = 0f;
                    for (int t = 0; t < tokens; t++) {
                        float v = x.get(t * in + i);
                        if (useMask == 1) {
                            v = v * mask.get(t * in + i);
                        }
                        acc += dh.get(t * rank + r) * v;
                    }
                    gradA.set(aOffset + r * in + i, gradA.get(aOffset + r * in + i) + acc);
                }
            }
        }
    }

    public static void dxLora(FloatArray dx, FloatArray dh, FloatArray a, FloatArray mask, IntArray sizes, int in,
                              int capacity, int rank, int aOffset) {
        for (@Parallel int i = 0; i < in; i++) {
            for (@Parallel int t = 0; t < capacity; t++) {
                if (t < sizes.get(Sizes.TOKENS) && sizes.get(Sizes.ADAPTERS) == 1) {
                    float acc = 0f;
                    for (int r = 0; r < rank; r++) {
                        acc += dh.get(t * rank + r) * a.get(aOffset + r * in + i);
                    }
                    if (sizes.get(Sizes.MASK) == 1) {
                        acc = acc * mask.get(t * in + i);
                    }
                    dx.set(t * in + i, dx.get(t * in + i) + acc);
                }
            }
        }
    }
}
