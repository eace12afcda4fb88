package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.jvm.Workspaces.Workspace;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import jdk.incubator.vector.FloatVector;
import dev.tornadolora.tensor.HalfWeight;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import jdk.incubator.vector.VectorShuffle;

import static dev.tornadolora.kernels.jvm.Gemm.F;
import static dev.tornadolora.kernels.jvm.Gemm.L;

/**
 * Matrix-vector products for a few tokens (decoding): each row of W is read once, straight from its storage,
 * and dotted with every token. Such calls are bound by reading W, not by arithmetic, so no packing is worth
 * it; for NF4 the codes are decoded into registers and multiplied there (one token) or decoded once into a row
 * buffer that all tokens reuse.
 */
final class Gemv {
    private Gemv() {}

    /** Rotations by L/2, L/4, .. 1 lanes: the fixed tree of {@link #sumLanes}. */
    private static final VectorShuffle<Float>[] HALVES = halves();

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] halves() {
        int n = Integer.numberOfTrailingZeros(L);
        VectorShuffle<Float>[] s = new VectorShuffle[n];
        for (int k = 0; k < n; k++) {
            s[k] = VectorShuffle.iota(F, L >> (k + 1), 1, true);
        }
        return s;
    }

    /**
     * The sum of v's lanes in a fixed order (pairwise halving). {@code reduceLanes(ADD)} leaves the order to the
     * implementation, and the interpreter's and C2's orders differ, which made one input give two results
     * depending on how warm the JIT was.
     */
    static float sumLanes(FloatVector v) {
        for (VectorShuffle<Float> half : HALVES) {
            v = v.add(v.rearrange(half));
        }
        return v.lane(0);
    }

    /** Σ_i a[aOff + i]·b[bOff + i] for i &lt; n, in fp32 vector lanes. */
    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        int i = 0;
        for (; i <= n - 4 * L; i += 4 * L) {
            s0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), s0);
            s1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), s1);
            s2 = FloatVector.fromArray(F, a, aOff + i + 2 * L).fma(FloatVector.fromArray(F, b, bOff + i + 2 * L), s2);
            s3 = FloatVector.fromArray(F, a, aOff + i + 3 * L).fma(FloatVector.fromArray(F, b, bOff + i + 3 * L), s3);
        }
        for (; i <= n - L; i += L) {
            s0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), s0);
        }
        float sum = sumLanes(s0.add(s1).add(s2.add(s3)));
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    /**
     * out[t·outStride + j] = Σ_i W[j, i]·x[t·in + i] for rows j in [j0, j1) and t &lt; tokens, W fp32 [*, in].
     */
    static void rows(float[] w, int in, float[] x, int tokens, int j0, int j1, float[] out, int outStride) {
        for (int j = j0; j < j1; j++) {
            for (int t = 0; t < tokens; t++) {
                out[t * outStride + j] = dot(w, j * in, x, t * in, in);
            }
        }
    }

    /**
     * The same for a coded (NF4, BF16, F16) W, each row decoded once into the worker's row buffer, which all tokens
     * reuse.
     */
    static void rows(BaseWeight w, float[] x, int tokens, int j0, int j1, float[] out, int outStride, Workspace scratch) {
        int in = w.cols();
        float[] row = scratch.row(in);
        for (int j = j0; j < j1; j++) {
            WeightDecoder.decode(w, j * in, in, row, 0);
            for (int t = 0; t < tokens; t++) {
                out[t * outStride + j] = dot(row, 0, x, t * in, in);
            }
        }
    }

    /** Shorts as many as {@link Gemm#F}'s float lanes, and ints of F's shape: a BF16 row widened in registers. */
    private static final VectorSpecies<Short> S16 = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> I32 = VectorSpecies.of(int.class, F.vectorShape());

    /** L BF16 values from bits[off ..] widened to fp32 in registers (sign-extended, shifted to the upper half). */
    private static FloatVector bf16(short[] bits, int off) {
        return ((IntVector) ShortVector.fromArray(S16, bits, off).convertShape(VectorOperators.S2I, I32, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /**
     * out[j] = Σ_i W[j, i]·x[i] for one token and rows [j0, j1) of a BF16 W, each row widened in registers and
     * multiplied there (decoding: read 2 bytes a weight, once). Summed as {@link #dot} sums (the same lanes,
     * accumulators and tail), so the result equals the decode-then-dot of {@link #rows(BaseWeight, float[], int,
     * int, int, float[], int)} and the fp32 GEMV of the widened weight bit for bit.
     */
    static void rowsBf16(HalfWeight w, float[] x, int j0, int j1, float[] out) {
        int n = w.cols();
        short[] bits = w.bits();
        for (int j = j0; j < j1; j++) {
            int o = j * n;
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            int i = 0;
            for (; i <= n - 4 * L; i += 4 * L) {
                s0 = bf16(bits, o + i).fma(FloatVector.fromArray(F, x, i), s0);
                s1 = bf16(bits, o + i + L).fma(FloatVector.fromArray(F, x, i + L), s1);
                s2 = bf16(bits, o + i + 2 * L).fma(FloatVector.fromArray(F, x, i + 2 * L), s2);
                s3 = bf16(bits, o + i + 3 * L).fma(FloatVector.fromArray(F, x, i + 3 * L), s3);
            }
            for (; i <= n - L; i += L) {
                s0 = bf16(bits, o + i).fma(FloatVector.fromArray(F, x, i), s0);
            }
            float sum = sumLanes(s0.add(s1).add(s2.add(s3)));
            for (; i < n; i++) {
                sum += Float.intBitsToFloat(bits[o + i] << 16) * x[i];
            }
            out[j] = sum;
        }
    }

    /** Whether {@link #rowsDecoded} applies: rows of whole units, each unit within one block. */
    static boolean decodesInRegisters(Nf4Tensor w) {
        return Nf4Decoder.vectorizable(w);
    }

    /**
     * out[j] = Σ_i W[j, i]·x[i] for one token and rows [j0, j1), the codes decoded in registers and multiplied
     * there; xd is x {@linkplain Nf4Decoder#deinterleave deinterleaved}. One flat loop over units (C2 handles it
     * better than a loop per block), each unit's codes scaled by its block's scale.
     */
    static void rowsDecoded(Nf4Tensor w, float[] xd, int j0, int j1, float[] out) {
        int in = w.cols(), blockSize = w.blockSize();
        boolean pow2 = Integer.bitCount(blockSize) == 1;
        int shift = Integer.numberOfTrailingZeros(blockSize);
        byte[] packed = w.packedCodes();
        float[] scales = w.blockScales();
        for (int j = j0; j < j1; j++) {
            FloatVector even = FloatVector.zero(F), odd = even;
            int e0 = j * in;
            for (int i = 0; i < in; i += Nf4Decoder.UNIT) {
                int e = e0 + i;
                float scale = scales[pow2 ? e >>> shift : e / blockSize];
                IntVector bytes = Nf4Decoder.loadUnit(packed, e >> 1);
                even = Nf4Decoder.evens(bytes).mul(scale).fma(FloatVector.fromArray(F, xd, i), even);
                odd = Nf4Decoder.odds(bytes).mul(scale).fma(FloatVector.fromArray(F, xd, i + L), odd);
            }
            out[j] = sumLanes(even.add(odd));
        }
    }

    /** y[yOff + i] += a · x[xOff + i] for i &lt; n. */
    static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector av = FloatVector.broadcast(F, a);
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, xOff + i).fma(av, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += a * x[xOff + i];
        }
    }

    /**
     * out[t·ldo + i] += Σ_j coef[t·ldc + j] · W[j, i] for columns i in [i0, i1), t &lt; tokens and rows j of W
     * (fp32 [rows × cols], or coded (NF4, BF16, F16) when {@code coded} is not null): rows of W scaled into a few output rows, column
     * block by column block so that those rows stay in L1.
     */
    static void columns(float[] w, BaseWeight coded, int rows, int cols, float[] coef, int ldc, int tokens,
                        int i0, int i1, float[] out, int ldo, Workspace scratch) {
        float[] row = scratch.row(COLUMN_BLOCK);
        for (int c0 = i0; c0 < i1; c0 += COLUMN_BLOCK) {
            int n = Math.min(COLUMN_BLOCK, i1 - c0);
            for (int j = 0; j < rows; j++) {
                float[] src = w;
                int off = j * cols + c0;
                if (coded != null) {
                    WeightDecoder.decode(coded, off, n, row, 0);
                    src = row;
                    off = 0;
                }
                for (int t = 0; t < tokens; t++) {
                    float a = coef[t * ldc + j];
                    if (a != 0f) {
                        axpy(a, src, off, out, t * ldo + c0, n);
                    }
                }
            }
        }
    }

    /** Rows of W per chunk of {@link #transposedRow}: fixed, so the sums' order does not depend on the threads. */
    static final int ROW_CHUNK = 256;

    /**
     * dx[i] = Σ_j dy[j]·W[j, i] for one token, reading W row by row as the forward GEMV does (the same bytes, in
     * the same order; NF4 decoded in registers): chunk c of {@link #ROW_CHUNK} rows adds its rows, scaled by dy,
     * into its own partial sum, and the partials are added in chunk order. Streaming W beats walking it column
     * block by column block (1 KiB per row at a stride of a whole row).
     */
    static void transposedRow(Workspaces ws, float[] dense, BaseWeight coded, int rows, int cols, float[] dy, float[] dx) {
        int chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
        float[] partial = new float[chunks * cols];
        Nf4Tensor nf4 = coded instanceof Nf4Tensor q && decodesInRegisters(q) ? q : null;
        boolean inRegisters = nf4 != null;
        ws.range(chunks, 1, (c0, c1, scratch) -> {
            for (int c = c0; c < c1; c++) {
                int off = c * cols;
                for (int j = c * ROW_CHUNK, end = Math.min(rows, j + ROW_CHUNK); j < end; j++) {
                    float g = dy[j];
                    if (g == 0f) {
                        continue;
                    }
                    if (dense != null) {
                        axpy(g, dense, j * cols, partial, off, cols);
                    } else if (inRegisters) {
                        axpyDecoded(g, nf4, j, partial, off);
                    } else {
                        float[] row = scratch.row(cols);
                        WeightDecoder.decode(coded, j * cols, cols, row, 0);
                        axpy(g, row, 0, partial, off, cols);
                    }
                }
            }
        });
        ws.par().range(cols, Nf4Decoder.UNIT * 16, (i0, i1) -> {
            for (int i = i0; i < i1; i++) {
                float sum = 0f;
                for (int c = 0; c < chunks; c++) {
                    sum += partial[c * cols + i];
                }
                // a partial of decoded rows holds each unit's even elements, then its odd ones
                int e = inRegisters ? interleavedIndex(i) : i;
                dx[e] = sum;
            }
        });
    }

    /** The element an index of a {@linkplain Nf4Decoder#deinterleave deinterleaved} row stands for. */
    private static int interleavedIndex(int i) {
        int u = i - i % Nf4Decoder.UNIT, l = i - u;
        return l < L ? u + 2 * l : u + 2 * (l - L) + 1;
    }

    /** y[yOff ..] += a·W[j, :] for an NF4 W decoded in registers, y in deinterleaved order (evens, odds per unit). */
    private static void axpyDecoded(float a, Nf4Tensor w, int j, float[] y, int yOff) {
        int in = w.cols(), blockSize = w.blockSize();
        boolean pow2 = Integer.bitCount(blockSize) == 1;
        int shift = Integer.numberOfTrailingZeros(blockSize);
        byte[] packed = w.packedCodes();
        float[] scales = w.blockScales();
        FloatVector av = FloatVector.broadcast(F, a);
        int e0 = j * in;
        for (int i = 0; i < in; i += Nf4Decoder.UNIT) {
            int e = e0 + i;
            float scale = scales[pow2 ? e >>> shift : e / blockSize];
            IntVector bytes = Nf4Decoder.loadUnit(packed, e >> 1);
            int o = yOff + i;
            // decoded exactly as Nf4.decode (code · scale), then a·w + y as axpy does: the same bits as the
            // decode-a-row path, whichever this weight takes
            Nf4Decoder.evens(bytes).mul(scale).fma(av, FloatVector.fromArray(F, y, o)).intoArray(y, o);
            Nf4Decoder.odds(bytes).mul(scale).fma(av, FloatVector.fromArray(F, y, o + L)).intoArray(y, o + L);
        }
    }

    /** Columns per block of {@link #columns}: a multiple of the NF4 unit, so blocks decode vectorized. */
    static final int COLUMN_BLOCK = 8 * Nf4Decoder.UNIT;
}
