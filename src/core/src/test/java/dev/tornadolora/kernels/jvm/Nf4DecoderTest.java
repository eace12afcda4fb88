package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.Nf4Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vector NF4 decoder against the format's one decode, {@link Nf4#element}, bit for bit. */
class Nf4DecoderTest {

    @Test
    void vectorDecodingEqualsTheDefinitionForEveryByte() {
        int cols = 4 * Nf4Decoder.UNIT, rows = 32;
        Nf4Tensor w = randomRecord(rows, cols, 2 * Nf4Decoder.UNIT, 4, new SplittableRandom(3));
        assertTrue(Nf4Decoder.vectorizable(w));
        float[] fast = new float[rows * cols];
        Nf4Decoder.decode(w, 0, rows * cols, fast, 0);
        assertArrayEquals(definition(w, 0, rows * cols), fast);
        // a range starting mid-row, on a unit boundary, written at an offset
        float[] part = new float[3 * Nf4Decoder.UNIT + 5];
        Nf4Decoder.decode(w, cols + Nf4Decoder.UNIT, 3 * Nf4Decoder.UNIT, part, 5);
        float[] expected = definition(w, cols + Nf4Decoder.UNIT, 3 * Nf4Decoder.UNIT);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], part[5 + i], "element " + i);
        }
    }

    @Test
    void unalignedRangesAndLayoutsTakeTheScalarPath() {
        Nf4Tensor w = randomRecord(6, 10, 4, 3, new SplittableRandom(5));  // odd blocks crossing rows
        assertFalse(Nf4Decoder.vectorizable(w));
        float[] out = new float[7];
        Nf4Decoder.decode(w, 13, 7, out, 0);
        assertArrayEquals(definition(w, 13, 7), out);
    }

    @Test
    void deinterleavedDotMatchesTheDecodedRow() {
        int cols = 8 * Nf4Decoder.UNIT;
        Nf4Tensor w = randomRecord(5, cols, 2 * Nf4Decoder.UNIT, 5, new SplittableRandom(11));
        assertTrue(Gemv.decodesInRegisters(w));
        SplittableRandom rnd = new SplittableRandom(12);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] y = new float[5];
        Gemv.rowsDecoded(w, Nf4Decoder.deinterleave(x, 0, cols), 0, 5, y);
        for (int j = 0; j < 5; j++) {
            float[] row = definition(w, j * cols, cols);
            double ref = 0, mag = 0;
            for (int i = 0; i < cols; i++) {
                ref += (double) row[i] * x[i];
                mag += Math.abs((double) row[i] * x[i]);
            }
            assertEquals(ref, y[j], 1e-6 * mag, "row " + j);
        }
    }

    /**
     * dx = Wᵀ·dy with W decoded in registers gives the bits of decoding each row ({@link Nf4#decode}) and adding
     * dy_j·row_j in row order (axpy: one fma per element), as the path for other layouts does.
     */
    @Test
    void transposedProductDecodedInRegistersEqualsDecodingTheRows() {
        int rows = 40, cols = 4 * Nf4Decoder.UNIT;
        Nf4Tensor w = randomRecord(rows, cols, 2 * Nf4Decoder.UNIT, 5, new SplittableRandom(13));
        assertTrue(Gemv.decodesInRegisters(w));
        SplittableRandom rnd = new SplittableRandom(14);
        float[] dy = new float[rows];
        for (int j = 0; j < rows; j++) dy[j] = j % 7 == 3 ? 0f : (float) rnd.nextDouble(-1, 1);
        float[] dx = new float[cols];
        try (Parallel par = new Parallel(1)) {
            Gemv.transposedRow(new Workspaces(par), null, w, rows, cols, dy, dx);
        }
        float[] partial = new float[cols], row = new float[cols];  // one chunk: rows < ROW_CHUNK
        for (int j = 0; j < rows; j++) {
            if (dy[j] == 0f) continue;
            Nf4.decode(w.packedCodes(), w.blockScales(), w.blockSize(), j * cols, cols, row, 0);
            for (int i = 0; i < cols; i++) partial[i] = Math.fma(row[i], dy[j], partial[i]);
        }
        float[] expected = new float[cols];
        for (int i = 0; i < cols; i++) {
            float sum = 0f;
            sum += partial[i];
            expected[i] = sum;
        }
        assertArrayEquals(expected, dx);
    }

    /** A record with every code and random scalers (not a quantized weight: the decoder only reads the record). */
    static Nf4Tensor randomRecord(int rows, int cols, int blockSize, int scalerBlockSize, SplittableRandom rnd) {
        int numel = rows * cols, blocks = numel / blockSize;
        byte[] codes = new byte[numel / 2];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (i < 256 ? i : rnd.nextInt(256));  // every byte value at least once
        }
        byte[] scalers = new byte[blocks];
        for (int b = 0; b < blocks; b++) {
            scalers[b] = (byte) (rnd.nextInt(256) - 128);
        }
        float[] factors = new float[blocks / scalerBlockSize];
        for (int j = 0; j < factors.length; j++) {
            factors[j] = (float) rnd.nextDouble(100, 2000);
        }
        return new Nf4Tensor(rows, cols, blockSize, scalerBlockSize, codes, scalers, factors, 0.05f);
    }

    static float[] definition(Nf4Tensor w, int e0, int count) {
        float[] d = new float[count];
        for (int i = 0; i < count; i++) {
            d[i] = Nf4.element(w.packedCodes(), w.blockScales(), w.blockSize(), e0 + i);
        }
        return d;
    }
}
