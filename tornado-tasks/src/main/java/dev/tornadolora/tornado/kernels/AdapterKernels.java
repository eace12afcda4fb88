package dev.tornadolora.tornado.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * The low-rank path of a LoRA layer, with x [T, in], dropout multiplier m [T, in] (read only when
 * {@code useMask = 1}), A [rank, in], B [out, rank] and s = alpha / rank:
 * <pre>
 *   forward    h   = (x ⊙ m) · Aᵀ                     {@link #down}
 *              y  += s · h · Bᵀ + bias                 {@link #epilogue}
 *   backward   dB (+)= s · dyᵀ · h                     {@link #gradB}
 *              dh  = s · dy · B                        {@link #gradH}
 *              dA (+)= dhᵀ · (x ⊙ m)                   {@link #gradA}
 *              dx += (dh · A) ⊙ m                      {@link #dxLora}
 * </pre>
 * The rank is small, so each output element is one work-item with its reduction innermost; dimension 0 always
 * runs along the contiguous index. The sequential reference of all of them is {@code ScalarLoraKernels}, the
 * project's oracle. {@code accumulate = 0} overwrites gradients instead of adding (a training step on the
 * device starts from zero gradients without a separate zeroing task).
 */
public final class AdapterKernels {
    private AdapterKernels() {}

    /** xd = x ⊙ m, for the schedules that run the down projection as a plain matmul. */
    public static void dropout(FloatArray x, FloatArray mask, FloatArray xd, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            xd.set(i, x.get(i) * mask.get(i));
        }
    }

    public static void down(FloatArray x, FloatArray mask, FloatArray a, FloatArray h, int rank, int tokens, int in,
                            int useMask) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                float acc = 0f;
                for (int i = 0; i < in; i++) {
                    float v = x.get(t * in + i);
                    if (useMask == 1) {
                        v = v * mask.get(t * in + i);
                    }
                    acc += v * a.get(r * in + i);
                }
                h.set(t * rank + r, acc);
            }
        }
    }

    public static void epilogue(FloatArray y, FloatArray h, FloatArray b, FloatArray bias, int out, int tokens,
                                int rank, float scale, int useBias, int useAdapters) {
        for (@Parallel int j = 0; j < out; j++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                float lora = 0f;
                if (useAdapters == 1) {
                    for (int r = 0; r < rank; r++) {
                        lora += h.get(t * rank + r) * b.get(j * rank + r);
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

    public static void gradB(FloatArray dy, FloatArray h, FloatArray gradB, int rank, int out, int tokens, float scale,
                             int accumulate) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int j = 0; j < out; j++) {
                float acc = 0f;
                for (int t = 0; t < tokens; t++) {
                    acc += dy.get(t * out + j) * h.get(t * rank + r);
                }
                float prev = accumulate == 1 ? gradB.get(j * rank + r) : 0f;
                gradB.set(j * rank + r, prev + scale * acc);
            }
        }
    }

    public static void gradH(FloatArray dy, FloatArray b, FloatArray dh, int rank, int tokens, int out, float scale) {
        for (@Parallel int r = 0; r < rank; r++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                float acc = 0f;
                for (int j = 0; j < out; j++) {
                    acc += dy.get(t * out + j) * b.get(j * rank + r);
                }
                dh.set(t * rank + r, scale * acc);
            }
        }
    }

    public static void gradA(FloatArray dh, FloatArray x, FloatArray mask, FloatArray gradA, int in, int rank,
                             int tokens, int useMask, int accumulate) {
        for (@Parallel int i = 0; i < in; i++) {
            for (@Parallel int r = 0; r < rank; r++) {
                float acc = 0f;
                for (int t = 0; t < tokens; t++) {
                    float v = x.get(t * in + i);
                    if (useMask == 1) {
                        v = v * mask.get(t * in + i);
                    }
                    acc += dh.get(t * rank + r) * v;
                }
                float prev = accumulate == 1 ? gradA.get(r * in + i) : 0f;
                gradA.set(r * in + i, prev + acc);
            }
        }
    }

    public static void dxLora(FloatArray dx, FloatArray dh, FloatArray a, FloatArray mask, int in, int tokens, int rank,
                              int useMask) {
        for (@Parallel int i = 0; i < in; i++) {
            for (@Parallel int t = 0; t < tokens; t++) {
                float acc = 0f;
                for (int r = 0; r < rank; r++) {
                    acc += dh.get(t * rank + r) * a.get(r * in + i);
                }
                if (useMask == 1) {
                    acc = acc * mask.get(t * in + i);
                }
                dx.set(t * in + i, dx.get(t * in + i) + acc);
            }
        }
    }
}
