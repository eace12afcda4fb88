package dev.tornadolora.tornado.kernels;

import static dev.tornadolora.tornado.kernels.Matmul.splat;
import static dev.tornadolora.tornado.kernels.Matmul.zero;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.vectors.Float16;

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
 * Each work-item keeps a block of outputs in {@code Float16} registers, 16 lanes along the rank (or, for the
 * products whose reduction is the rank, along the contiguous index) and {@link #BLOCK} rows or columns, with the
 * reduction innermost and in the JVM's order (every output element sums its terms first to last from 0, as the
 * scalar loop does). Explicit vectors matter on PoCL: TornadoVM's {@code @Parallel} loops become a grid-stride
 * loop inside the kernel, which stops PoCL's work-group vectoriser, so scalar kernels run one lane wide
 * ({@link Matmul} says the same of the base products). Lanes past the rank (or the row) read a clamped
 * neighbour and are never stored. Dimension 0 runs over the many blocks, dimension 1 over the rank's panels of
 * 16 (one at rank ≤ 16). T, the mask switch and the adapter switch come in {@code sizes} ({@link Sizes});
 * grids over tokens cover the plan's {@code capacity} and skip the rows past T. With the adapters off the
 * adapter tasks leave their outputs alone. A and B (and their gradients) start at {@code aOffset}/{@code bOffset}
 * of their arrays: a layer's plan holds them alone (offset 0), the model plan ({@code plan.LlamaDevicePlan}) holds
 * every adapter end to end in one array, so that clipping and AdamW run over one buffer. The sequential reference
 * of all of them is {@code ScalarLoraKernels},
 * the project's oracle.
 */
public final class AdapterKernels {
    /** Rows (tokens) or columns a work-item keeps in registers. */
    public static final int BLOCK = 8;
    /** Lanes of a register: one panel of the rank, or of a row. */
    public static final int LANES = Matmul.PANEL;

    private AdapterKernels() {}

    /** Work-items along a dimension of n in blocks of b. */
    public static int blocks(int n, int b) {
        return (n + b - 1) / b;
    }

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

    /** h [T, rank] = (x ⊙ m) · Aᵀ: a work-item holds 8 tokens × 16 ranks, A's column read across its rows. */
    public static void down(FloatArray x, FloatArray mask, FloatArray a, FloatArray h, IntArray sizes,
                            int tokenBlocks, int rankPanels, int rank, int in, int aOffset) {
        for (@Parallel int tb = 0; tb < tokenBlocks; tb++) {
            for (@Parallel int rp = 0; rp < rankPanels; rp++) {
              int m = sizes.get(Sizes.TOKENS);
              if (tb * BLOCK < m && sizes.get(Sizes.ADAPTERS) == 1) {
                int useMask = sizes.get(Sizes.MASK);
                int r0 = rp * LANES, lanes = rank - r0;
                int t0 = tb * BLOCK;
                int t1 = Math.min(t0 + 1, m - 1), t2 = Math.min(t0 + 2, m - 1), t3 = Math.min(t0 + 3, m - 1);
                int t4 = Math.min(t0 + 4, m - 1), t5 = Math.min(t0 + 5, m - 1), t6 = Math.min(t0 + 6, m - 1);
                int t7 = Math.min(t0 + 7, m - 1);
                Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(), c6 = zero(),
                        c7 = zero();
                for (int i = 0; i < in; i++) {
                    Float16 av = load(a, aOffset + r0 * in + i, in, lanes);
                    c0 = Float16.add(c0, Float16.mult(av, splat(masked(x, mask, t0 * in + i, useMask))));
                    c1 = Float16.add(c1, Float16.mult(av, splat(masked(x, mask, t1 * in + i, useMask))));
                    c2 = Float16.add(c2, Float16.mult(av, splat(masked(x, mask, t2 * in + i, useMask))));
                    c3 = Float16.add(c3, Float16.mult(av, splat(masked(x, mask, t3 * in + i, useMask))));
                    c4 = Float16.add(c4, Float16.mult(av, splat(masked(x, mask, t4 * in + i, useMask))));
                    c5 = Float16.add(c5, Float16.mult(av, splat(masked(x, mask, t5 * in + i, useMask))));
                    c6 = Float16.add(c6, Float16.mult(av, splat(masked(x, mask, t6 * in + i, useMask))));
                    c7 = Float16.add(c7, Float16.mult(av, splat(masked(x, mask, t7 * in + i, useMask))));
                }
                // a clamped duplicate row stores its neighbour's values again: h is written, not accumulated
                storeLanes(h, t0 * rank + r0, 1, lanes, c0);
                storeLanes(h, t1 * rank + r0, 1, lanes, c1);
                storeLanes(h, t2 * rank + r0, 1, lanes, c2);
                storeLanes(h, t3 * rank + r0, 1, lanes, c3);
                storeLanes(h, t4 * rank + r0, 1, lanes, c4);
                storeLanes(h, t5 * rank + r0, 1, lanes, c5);
                storeLanes(h, t6 * rank + r0, 1, lanes, c6);
                storeLanes(h, t7 * rank + r0, 1, lanes, c7);
              }
            }
        }
    }

    /**
     * y [T, out] += s · h · Wᵀ (+ bias), W(j, r) at {@code wOffset + r·rStride + j·columnStride}: a work-item holds
     * 8 tokens × 16 columns, W read across lanes. The forward's {@code s·h·Bᵀ} (W = B [out, rank]: strides 1, rank)
     * and, unmasked, the backward's {@code dx += dh·A} (W = Aᵀ: strides in, 1; s = 1, exact).
     */
    public static void epilogue(FloatArray y, FloatArray h, FloatArray w, FloatArray bias, IntArray sizes,
                                int outPanels, int tokenBlocks, int out, int rank, float scale, int useBias,
                                int wOffset, int rStride, int columnStride) {
        for (@Parallel int jp = 0; jp < outPanels; jp++) {
            for (@Parallel int tb = 0; tb < tokenBlocks; tb++) {
              int m = sizes.get(Sizes.TOKENS);
              if (tb * BLOCK < m) {
                int j0 = jp * LANES, lanes = out - j0;
                int t0 = tb * BLOCK;
                int t1 = Math.min(t0 + 1, m - 1), t2 = Math.min(t0 + 2, m - 1), t3 = Math.min(t0 + 3, m - 1);
                int t4 = Math.min(t0 + 4, m - 1), t5 = Math.min(t0 + 5, m - 1), t6 = Math.min(t0 + 6, m - 1);
                int t7 = Math.min(t0 + 7, m - 1);
                Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(), c6 = zero(),
                        c7 = zero();
                // the adapter switch as the loop's bound, read from the device: a constant bound (the rank) is
                // unrolled by Graal into vectors TornadoVM cannot place, and vectors made inside a branch cannot merge
                int terms = rank * sizes.get(Sizes.ADAPTERS);
                for (int r = 0; r < terms; r++) {
                    Float16 bv = load(w, wOffset + r * rStride + j0 * columnStride, columnStride, lanes);
                    c0 = Float16.add(c0, Float16.mult(bv, splat(h.get(t0 * rank + r))));
                    c1 = Float16.add(c1, Float16.mult(bv, splat(h.get(t1 * rank + r))));
                    c2 = Float16.add(c2, Float16.mult(bv, splat(h.get(t2 * rank + r))));
                    c3 = Float16.add(c3, Float16.mult(bv, splat(h.get(t3 * rank + r))));
                    c4 = Float16.add(c4, Float16.mult(bv, splat(h.get(t4 * rank + r))));
                    c5 = Float16.add(c5, Float16.mult(bv, splat(h.get(t5 * rank + r))));
                    c6 = Float16.add(c6, Float16.mult(bv, splat(h.get(t6 * rank + r))));
                    c7 = Float16.add(c7, Float16.mult(bv, splat(h.get(t7 * rank + r))));
                }
                // y accumulates: a clamped duplicate row must not add twice. (y + s·lora) + bias, as the JVM
                // twin adds them; without a bias (a constant: the branch is compiled away) + 0 changes nothing.
                Float16 s = splat(scale);
                Float16 biasLanes = useBias == 1 ? load(bias, j0, 1, lanes) : zero();
                int live = m - t0;
                int e0 = t0 * out + j0, e1 = t1 * out + j0, e2 = t2 * out + j0, e3 = t3 * out + j0;
                int e4 = t4 * out + j0, e5 = t5 * out + j0, e6 = t6 * out + j0, e7 = t7 * out + j0;
                storeLanes(y, e0, 1, lanes, Float16.add(Float16.add(load(y, e0, 1, lanes),
                        Float16.mult(c0, s)), biasLanes));
                if (live > 1) storeLanes(y, e1, 1, lanes, Float16.add(Float16.add(load(y, e1, 1, lanes),
                        Float16.mult(c1, s)), biasLanes));
                if (live > 2) storeLanes(y, e2, 1, lanes, Float16.add(Float16.add(load(y, e2, 1, lanes),
                        Float16.mult(c2, s)), biasLanes));
                if (live > 3) storeLanes(y, e3, 1, lanes, Float16.add(Float16.add(load(y, e3, 1, lanes),
                        Float16.mult(c3, s)), biasLanes));
                if (live > 4) storeLanes(y, e4, 1, lanes, Float16.add(Float16.add(load(y, e4, 1, lanes),
                        Float16.mult(c4, s)), biasLanes));
                if (live > 5) storeLanes(y, e5, 1, lanes, Float16.add(Float16.add(load(y, e5, 1, lanes),
                        Float16.mult(c5, s)), biasLanes));
                if (live > 6) storeLanes(y, e6, 1, lanes, Float16.add(Float16.add(load(y, e6, 1, lanes),
                        Float16.mult(c6, s)), biasLanes));
                if (live > 7) storeLanes(y, e7, 1, lanes, Float16.add(Float16.add(load(y, e7, 1, lanes),
                        Float16.mult(c7, s)), biasLanes));
              }
            }
        }
    }

    /** dB [out, rank] += s · dyᵀ · h: a work-item holds 8 columns of dy × 16 ranks, h's row read across lanes. */
    public static void gradB(FloatArray dy, FloatArray h, FloatArray gradB, IntArray sizes, int outBlocks,
                             int rankPanels, int rank, int out, float scale, int bOffset) {
        for (@Parallel int jb = 0; jb < outBlocks; jb++) {
            for (@Parallel int rp = 0; rp < rankPanels; rp++) {
                if (sizes.get(Sizes.ADAPTERS) == 1) {
                    int tokens = sizes.get(Sizes.TOKENS);
                    int r0 = rp * LANES, lanes = rank - r0;
                    int j0 = jb * BLOCK;
                    int j1 = Math.min(j0 + 1, out - 1), j2 = Math.min(j0 + 2, out - 1);
                    int j3 = Math.min(j0 + 3, out - 1), j4 = Math.min(j0 + 4, out - 1);
                    int j5 = Math.min(j0 + 5, out - 1), j6 = Math.min(j0 + 6, out - 1);
                    int j7 = Math.min(j0 + 7, out - 1);
                    Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(),
                            c6 = zero(), c7 = zero();
                    for (int t = 0; t < tokens; t++) {
                        Float16 hv = load(h, t * rank + r0, 1, lanes);
                        int row = t * out;
                        c0 = Float16.add(c0, Float16.mult(hv, splat(dy.get(row + j0))));
                        c1 = Float16.add(c1, Float16.mult(hv, splat(dy.get(row + j1))));
                        c2 = Float16.add(c2, Float16.mult(hv, splat(dy.get(row + j2))));
                        c3 = Float16.add(c3, Float16.mult(hv, splat(dy.get(row + j3))));
                        c4 = Float16.add(c4, Float16.mult(hv, splat(dy.get(row + j4))));
                        c5 = Float16.add(c5, Float16.mult(hv, splat(dy.get(row + j5))));
                        c6 = Float16.add(c6, Float16.mult(hv, splat(dy.get(row + j6))));
                        c7 = Float16.add(c7, Float16.mult(hv, splat(dy.get(row + j7))));
                    }
                    int live = out - j0, base = bOffset + r0;
                    int e0 = base + j0 * rank, e1 = base + j1 * rank, e2 = base + j2 * rank, e3 = base + j3 * rank;
                    int e4 = base + j4 * rank, e5 = base + j5 * rank, e6 = base + j6 * rank, e7 = base + j7 * rank;
                    Float16 s = splat(scale);
                    storeLanes(gradB, e0, 1, lanes, Float16.add(load(gradB, e0, 1, lanes), Float16.mult(c0, s)));
                    if (live > 1) storeLanes(gradB, e1, 1, lanes, Float16.add(load(gradB, e1, 1, lanes), Float16.mult(c1, s)));
                    if (live > 2) storeLanes(gradB, e2, 1, lanes, Float16.add(load(gradB, e2, 1, lanes), Float16.mult(c2, s)));
                    if (live > 3) storeLanes(gradB, e3, 1, lanes, Float16.add(load(gradB, e3, 1, lanes), Float16.mult(c3, s)));
                    if (live > 4) storeLanes(gradB, e4, 1, lanes, Float16.add(load(gradB, e4, 1, lanes), Float16.mult(c4, s)));
                    if (live > 5) storeLanes(gradB, e5, 1, lanes, Float16.add(load(gradB, e5, 1, lanes), Float16.mult(c5, s)));
                    if (live > 6) storeLanes(gradB, e6, 1, lanes, Float16.add(load(gradB, e6, 1, lanes), Float16.mult(c6, s)));
                    if (live > 7) storeLanes(gradB, e7, 1, lanes, Float16.add(load(gradB, e7, 1, lanes), Float16.mult(c7, s)));
                }
            }
        }
    }

    /** dh [T, rank] = s · dy · B: a work-item holds 8 tokens × 16 ranks, B's row read across lanes. */
    public static void gradH(FloatArray dy, FloatArray b, FloatArray dh, IntArray sizes, int tokenBlocks,
                             int rankPanels, int rank, int out, float scale, int bOffset) {
        for (@Parallel int tb = 0; tb < tokenBlocks; tb++) {
            for (@Parallel int rp = 0; rp < rankPanels; rp++) {
              int m = sizes.get(Sizes.TOKENS);
              if (tb * BLOCK < m && sizes.get(Sizes.ADAPTERS) == 1) {
                int r0 = rp * LANES, lanes = rank - r0;
                int t0 = tb * BLOCK;
                int t1 = Math.min(t0 + 1, m - 1), t2 = Math.min(t0 + 2, m - 1), t3 = Math.min(t0 + 3, m - 1);
                int t4 = Math.min(t0 + 4, m - 1), t5 = Math.min(t0 + 5, m - 1), t6 = Math.min(t0 + 6, m - 1);
                int t7 = Math.min(t0 + 7, m - 1);
                Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(), c6 = zero(),
                        c7 = zero();
                for (int j = 0; j < out; j++) {
                    Float16 bv = load(b, bOffset + j * rank + r0, 1, lanes);
                    c0 = Float16.add(c0, Float16.mult(bv, splat(dy.get(t0 * out + j))));
                    c1 = Float16.add(c1, Float16.mult(bv, splat(dy.get(t1 * out + j))));
                    c2 = Float16.add(c2, Float16.mult(bv, splat(dy.get(t2 * out + j))));
                    c3 = Float16.add(c3, Float16.mult(bv, splat(dy.get(t3 * out + j))));
                    c4 = Float16.add(c4, Float16.mult(bv, splat(dy.get(t4 * out + j))));
                    c5 = Float16.add(c5, Float16.mult(bv, splat(dy.get(t5 * out + j))));
                    c6 = Float16.add(c6, Float16.mult(bv, splat(dy.get(t6 * out + j))));
                    c7 = Float16.add(c7, Float16.mult(bv, splat(dy.get(t7 * out + j))));
                }
                Float16 s = splat(scale);
                storeLanes(dh, t0 * rank + r0, 1, lanes, Float16.mult(c0, s));
                storeLanes(dh, t1 * rank + r0, 1, lanes, Float16.mult(c1, s));
                storeLanes(dh, t2 * rank + r0, 1, lanes, Float16.mult(c2, s));
                storeLanes(dh, t3 * rank + r0, 1, lanes, Float16.mult(c3, s));
                storeLanes(dh, t4 * rank + r0, 1, lanes, Float16.mult(c4, s));
                storeLanes(dh, t5 * rank + r0, 1, lanes, Float16.mult(c5, s));
                storeLanes(dh, t6 * rank + r0, 1, lanes, Float16.mult(c6, s));
                storeLanes(dh, t7 * rank + r0, 1, lanes, Float16.mult(c7, s));
              }
            }
        }
    }

    /** dA [rank, in] += dhᵀ · (x ⊙ m): a work-item holds 8 columns of x × 16 ranks, dh's row read across lanes. */
    public static void gradA(FloatArray dh, FloatArray x, FloatArray mask, FloatArray gradA, IntArray sizes,
                             int inBlocks, int rankPanels, int rank, int in, int aOffset) {
        for (@Parallel int ib = 0; ib < inBlocks; ib++) {
            for (@Parallel int rp = 0; rp < rankPanels; rp++) {
                if (sizes.get(Sizes.ADAPTERS) == 1) {
                    int tokens = sizes.get(Sizes.TOKENS);
                    int useMask = sizes.get(Sizes.MASK);
                    int r0 = rp * LANES, lanes = rank - r0;
                    int i0 = ib * BLOCK;
                    int i1 = Math.min(i0 + 1, in - 1), i2 = Math.min(i0 + 2, in - 1);
                    int i3 = Math.min(i0 + 3, in - 1), i4 = Math.min(i0 + 4, in - 1);
                    int i5 = Math.min(i0 + 5, in - 1), i6 = Math.min(i0 + 6, in - 1);
                    int i7 = Math.min(i0 + 7, in - 1);
                    Float16 c0 = zero(), c1 = zero(), c2 = zero(), c3 = zero(), c4 = zero(), c5 = zero(),
                            c6 = zero(), c7 = zero();
                    for (int t = 0; t < tokens; t++) {
                        Float16 dv = load(dh, t * rank + r0, 1, lanes);
                        int row = t * in;
                        c0 = Float16.add(c0, Float16.mult(dv, splat(masked(x, mask, row + i0, useMask))));
                        c1 = Float16.add(c1, Float16.mult(dv, splat(masked(x, mask, row + i1, useMask))));
                        c2 = Float16.add(c2, Float16.mult(dv, splat(masked(x, mask, row + i2, useMask))));
                        c3 = Float16.add(c3, Float16.mult(dv, splat(masked(x, mask, row + i3, useMask))));
                        c4 = Float16.add(c4, Float16.mult(dv, splat(masked(x, mask, row + i4, useMask))));
                        c5 = Float16.add(c5, Float16.mult(dv, splat(masked(x, mask, row + i5, useMask))));
                        c6 = Float16.add(c6, Float16.mult(dv, splat(masked(x, mask, row + i6, useMask))));
                        c7 = Float16.add(c7, Float16.mult(dv, splat(masked(x, mask, row + i7, useMask))));
                    }
                    int live = in - i0, base = aOffset + r0 * in;
                    int e0 = base + i0, e1 = base + i1, e2 = base + i2, e3 = base + i3;
                    int e4 = base + i4, e5 = base + i5, e6 = base + i6, e7 = base + i7;
                    storeLanes(gradA, e0, in, lanes, Float16.add(load(gradA, e0, in, lanes), c0));
                    if (live > 1) storeLanes(gradA, e1, in, lanes, Float16.add(load(gradA, e1, in, lanes), c1));
                    if (live > 2) storeLanes(gradA, e2, in, lanes, Float16.add(load(gradA, e2, in, lanes), c2));
                    if (live > 3) storeLanes(gradA, e3, in, lanes, Float16.add(load(gradA, e3, in, lanes), c3));
                    if (live > 4) storeLanes(gradA, e4, in, lanes, Float16.add(load(gradA, e4, in, lanes), c4));
                    if (live > 5) storeLanes(gradA, e5, in, lanes, Float16.add(load(gradA, e5, in, lanes), c5));
                    if (live > 6) storeLanes(gradA, e6, in, lanes, Float16.add(load(gradA, e6, in, lanes), c6));
                    if (live > 7) storeLanes(gradA, e7, in, lanes, Float16.add(load(gradA, e7, in, lanes), c7));
                }
            }
        }
    }

    /**
     * dx [T, in] += (dh · A) ⊙ m, one work-item per element with the rank innermost (16 terms: the blocked
     * schedule gains little here, and TornadoVM cannot compile its masked vector form).
     */
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

    /** x[e] ⊙ m[e] with the mask on, else x[e]. */
    public static float masked(FloatArray x, FloatArray mask, int e, int useMask) {
        float v = x.get(e);
        return useMask == 1 ? v * mask.get(e) : v;
    }

    /** a[base + l·stride] in lane l for l < count; the lanes past count repeat element count − 1. */
    public static Float16 load(FloatArray a, int base, int stride, int count) {
        int last = count - 1;
        return new Float16(a.get(base), a.get(base + Math.min(1, last) * stride),
                a.get(base + Math.min(2, last) * stride), a.get(base + Math.min(3, last) * stride),
                a.get(base + Math.min(4, last) * stride), a.get(base + Math.min(5, last) * stride),
                a.get(base + Math.min(6, last) * stride), a.get(base + Math.min(7, last) * stride),
                a.get(base + Math.min(8, last) * stride), a.get(base + Math.min(9, last) * stride),
                a.get(base + Math.min(10, last) * stride), a.get(base + Math.min(11, last) * stride),
                a.get(base + Math.min(12, last) * stride), a.get(base + Math.min(13, last) * stride),
                a.get(base + Math.min(14, last) * stride), a.get(base + Math.min(15, last) * stride));
    }

    /**
     * a[base + l·stride] = v_l for l < count. An accumulating store is {@code storeLanes(.., add(load(..), v))}
     * written out at the call (the JVM twins' {@code g += s·acc}, s·acc made lane-wise first): TornadoVM inlines
     * a helper of at most 600 graph nodes, callees included.
     */
    public static void storeLanes(FloatArray a, int base, int stride, int count, Float16 v) {
        a.set(base, v.getS0());
        if (count > 1) a.set(base + stride, v.getS1());
        if (count > 2) a.set(base + 2 * stride, v.getS2());
        if (count > 3) a.set(base + 3 * stride, v.getS3());
        if (count > 4) a.set(base + 4 * stride, v.getS4());
        if (count > 5) a.set(base + 5 * stride, v.getS5());
        if (count > 6) a.set(base + 6 * stride, v.getS6());
        if (count > 7) a.set(base + 7 * stride, v.getS7());
        if (count > 8) a.set(base + 8 * stride, v.getS8());
        if (count > 9) a.set(base + 9 * stride, v.getS9());
        if (count > 10) a.set(base + 10 * stride, v.getS10());
        if (count > 11) a.set(base + 11 * stride, v.getS11());
        if (count > 12) a.set(base + 12 * stride, v.getS12());
        if (count > 13) a.set(base + 13 * stride, v.getS13());
        if (count > 14) a.set(base + 14 * stride, v.getS14());
        if (count > 15) a.set(base + 15 * stride, v.getS15());
    }
}
