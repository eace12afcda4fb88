package dev.tornadolora.kernels.jvm;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.Nf4Tensor;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * NF4 decoding with the Vector API, in natural element order: the schedule of {@link Nf4#decode} (element e is
 * {@code NF4[code(e)] · scale[e / blockSize]}, code(e) the high nibble of byte e/2 for even e, the low nibble for
 * odd e) in vector lanes, the same one multiply per element, so the same bits (Nf4DecoderTest).
 *
 * <p>A <em>unit</em> is 2L consecutive elements (L = float lanes), packed in L bytes: one byte load, widened to
 * L int lanes; each half of the unit duplicates its bytes pairwise (lane l reads byte l/2), shifts even lanes
 * by 4, masks the nibble, and looks the code up in the code book with one {@code selectFrom} (16 lanes hold the
 * whole book; with 8 lanes, two half-books and a blend). A unit is decoded with one scale when block sizes are
 * multiples of 2L, which {@link #vectorizable} checks; everything else takes the scalar path.
 */
final class Nf4Decoder {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Elements per unit: two float vectors. */
    static final int UNIT = 2 * L;

    private static final VectorSpecies<Byte> BYTES = byteSpecies();
    private static final boolean VECTOR = BYTES != null;
    /** The code book as raw float bits in L lanes: all of it when L ≥ 16, else codes 0..L−1 and L..2L−1. */
    private static final IntVector TABLE_LOW = codebookTable(0);
    private static final IntVector TABLE_HIGH = codebookTable(1);
    private static final VectorShuffle<Integer> LOW_HALF = pairShuffle(0);
    private static final VectorShuffle<Integer> HIGH_HALF = pairShuffle(L / 2);
    /** 4 for even lanes (high nibble), 0 for odd lanes. */
    private static final IntVector NIBBLE_SHIFT = IntVector.fromArray(I, nibbleShifts(), 0);

    private Nf4Decoder() {}

    /** Whether rows of this weight decode unit by unit: every row and every block is whole units. */
    static boolean vectorizable(Nf4Tensor w) {
        return VECTOR && w.cols() % UNIT == 0 && w.blockSize() % UNIT == 0;
    }

    /** Float bits of NF4[code] for each lane's code 0..15. */
    static IntVector lookup(IntVector codes) {
        if (L >= 16) {
            return codes.selectFrom(TABLE_LOW);
        }
        // 8 lanes: codes 0..7 from one half-book, 8..15 from the other (lane = code mod 8).
        IntVector lane = codes.and(L - 1);
        return lane.selectFrom(TABLE_LOW).blend(lane.selectFrom(TABLE_HIGH), codes.compare(VectorOperators.GE, L));
    }

    /** The unit's bytes as int lanes (sign-extended: only the low 8 bits matter). */
    static IntVector loadUnit(byte[] packed, int byteOffset) {
        return (IntVector) ByteVector.fromArray(BYTES, packed, byteOffset).convertShape(VectorOperators.B2I, I, 0);
    }

    /** Code book values of elements [0, L) of a unit loaded by {@link #loadUnit} (not yet scaled). */
    static FloatVector low(IntVector unitBytes) {
        return half(unitBytes.rearrange(LOW_HALF));
    }

    /** Code book values of elements [L, 2L) of a unit loaded by {@link #loadUnit} (not yet scaled). */
    static FloatVector high(IntVector unitBytes) {
        return half(unitBytes.rearrange(HIGH_HALF));
    }

    /** Code book values of the even elements 0, 2, .., 2L−2 of a unit (the high nibbles), in lane order. */
    static FloatVector evens(IntVector unitBytes) {
        return lookup(unitBytes.lanewise(VectorOperators.ASHR, 4).and(0xF)).reinterpretAsFloats();
    }

    /** Code book values of the odd elements 1, 3, .., 2L−1 of a unit (the low nibbles), in lane order. */
    static FloatVector odds(IntVector unitBytes) {
        return lookup(unitBytes.and(0xF)).reinterpretAsFloats();
    }

    /**
     * x reordered to match {@link #evens} and {@link #odds}: per unit of 2L elements, the even elements, then the
     * odd ones. A dot product with a row then needs no interleaving of the decoded codes.
     */
    static float[] deinterleave(float[] x, int off, int n) {
        float[] d = new float[n];
        for (int u = 0; u < n; u += UNIT) {
            for (int l = 0; l < L; l++) {
                d[u + l] = x[off + u + 2 * l];
                d[u + L + l] = x[off + u + 2 * l + 1];
            }
        }
        return d;
    }

    private static FloatVector half(IntVector pairedBytes) {
        IntVector codes = pairedBytes.lanewise(VectorOperators.ASHR, NIBBLE_SHIFT).and(0xF);
        return lookup(codes).reinterpretAsFloats();
    }

    /**
     * Writes elements {@code [e0, e0 + count)} of the flattened weight to {@code dst[off ..]}. Vectorized when
     * the weight is {@link #vectorizable} and the range is whole units; any range otherwise.
     */
    static void decode(Nf4Tensor w, int e0, int count, float[] dst, int off) {
        if (vectorizable(w) && e0 % UNIT == 0 && count % UNIT == 0) {
            byte[] packed = w.packedCodes();
            float[] scales = w.blockScales();
            int blockSize = w.blockSize();
            for (int e = e0, end = e0 + count; e < end; e += UNIT, off += UNIT) {
                float scale = scales[e / blockSize];
                IntVector bytes = loadUnit(packed, e >> 1);
                low(bytes).mul(scale).intoArray(dst, off);
                high(bytes).mul(scale).intoArray(dst, off + L);
            }
        } else {
            decodeScalar(w, e0, count, dst, off);
        }
    }

    /** Any range, element by element: the format's one scalar decode, {@link Nf4#decode}. */
    static void decodeScalar(Nf4Tensor w, int e0, int count, float[] dst, int off) {
        w.decode(e0, count, dst, off);
    }

    private static VectorSpecies<Byte> byteSpecies() {
        if (L < 8) {
            return null;  // no byte vector of L bytes (below 64 bits): scalar decoding
        }
        return VectorSpecies.of(byte.class, VectorShape.forBitSize(L * Byte.SIZE));
    }

    private static IntVector codebookTable(int part) {
        int[] bits = new int[L];
        for (int lane = 0; lane < L; lane++) {
            int code = part * L + lane;
            bits[lane] = code < 16 ? Float.floatToRawIntBits(Nf4.codebook(code)) : 0;
        }
        return IntVector.fromArray(I, bits, 0);
    }

    private static VectorShuffle<Integer> pairShuffle(int firstByte) {
        int[] idx = new int[L];
        for (int lane = 0; lane < L; lane++) {
            idx[lane] = firstByte + lane / 2;
        }
        return VectorShuffle.fromArray(I, idx, 0);
    }

    private static int[] nibbleShifts() {
        int[] s = new int[L];
        for (int lane = 0; lane < L; lane += 2) {
            s[lane] = 4;
        }
        return s;
    }
}
