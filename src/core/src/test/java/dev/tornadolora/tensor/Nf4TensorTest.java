package dev.tornadolora.tensor;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.BFloat16;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sizes, storage, decoding paths and the cases torchao leaves undefined; the PyTorch parity is in Nf4GoldenTest. */
class Nf4TensorTest {

    private static float[] randn(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
        }
        return w;
    }

    private static String message(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void sizesThatDoNotDivideAreNamed() {
        assertEquals("numel 15 of [3, 5] is odd: NF4 packs two codes per byte",
                message(() -> Nf4Tensor.quantize(new float[15], 3, 5, 5, 1)));
        assertEquals("block_size 64 does not divide numel 160 of [10, 16]",
                message(() -> Nf4Tensor.quantize(new float[160], 10, 16, 64, 1)));
        assertEquals("scaler_block_size 256 does not divide the 4 blocks (numel 256 / block_size 64)",
                message(() -> Nf4Tensor.quantize(new float[256], 16, 16)));
        assertEquals("block_size (0) and scaler_block_size (256) must be positive",
                message(() -> Nf4Tensor.quantize(new float[256], 16, 16, 0, 256)));
        assertEquals("block_size (64) and scaler_block_size (-1) must be positive",
                message(() -> Nf4Tensor.quantize(new float[256], 16, 16, 64, -1)));
        assertEquals("NF4 weight shape [0, 16] must be positive",
                message(() -> Nf4Tensor.quantize(new float[0], 0, 16)));
        assertEquals("weight: expected 256 elements (numel of [16, 16]) but got 255",
                message(() -> Nf4Tensor.quantize(new float[255], 16, 16, 64, 4)));
    }

    @Test
    void nonFiniteWeightsAreRefusedByPosition() {
        float[] w = new float[256];
        w[70] = Float.NaN;
        assertEquals("weight: element 70 (row 4, column 6) is NaN; NF4 quantization needs finite values",
                message(() -> Nf4Tensor.quantize(w, 16, 16, 64, 4)));
        w[70] = Float.NEGATIVE_INFINITY;
        assertTrue(message(() -> Nf4Tensor.quantize(w, 16, 16, 64, 4)).contains("is -Infinity"));
    }

    @Test
    void storedRecordLengthsAndValuesAreChecked() {
        byte[] codes = new byte[128], scalers = new byte[4];
        float[] qf = {1f};
        assertEquals("quantized_data: expected 128 elements (numel 256 of [16, 16] / 2) but got 127",
                message(() -> new Nf4Tensor(16, 16, 64, 4, new byte[127], scalers, qf, 0f)));
        assertEquals("quantized_scalers: expected 4 elements (numel 256 of [16, 16] / block_size 64) but got 8",
                message(() -> new Nf4Tensor(16, 16, 64, 4, codes, new byte[8], qf, 0f)));
        assertEquals("quantization_factor: expected 1 elements (4 blocks / scaler_block_size 4) but got 2",
                message(() -> new Nf4Tensor(16, 16, 64, 4, codes, scalers, new float[2], 0f)));
        assertEquals("quantization_factor[0]: expected a positive value but got NaN",
                message(() -> new Nf4Tensor(16, 16, 64, 4, codes, scalers, new float[] {Float.NaN}, 0f)));
        assertEquals("quantization_factor[0]: expected a positive value but got -2.0",
                message(() -> new Nf4Tensor(16, 16, 64, 4, codes, scalers, new float[] {-2f}, 0f)));
        assertEquals("scaler_mean: expected a finite value but got Infinity",
                message(() -> new Nf4Tensor(16, 16, 64, 4, codes, scalers, qf, Float.POSITIVE_INFINITY)));
    }

    /** 4 bits per code, 8/64 per int8 scaler, 32/(64·256) per factor, and 32/numel for μ. */
    @Test
    void storageOf4096x4096IsUnder4127BitsPerParameter() {
        Nf4Tensor t = Nf4Tensor.quantize(randn(4096 * 4096, 1), 4096, 4096);
        long numel = 4096L * 4096;
        assertEquals(numel / 2 + numel / 64 + 4 * (numel / 64 / 256) + 4, t.storageBytes());
        double bits = 8 * t.bytesPerParameter();
        assertEquals(4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / numel, bits, 1e-12);
        assertTrue(bits <= 4.127, "bits per parameter " + bits);
    }

    /** Decoding any element range, also ranges and blocks of odd length, equals code book × block scale. */
    @Test
    void decodeOfAnyRangeMatchesCodeTimesScale() {
        int rows = 6, cols = 10, block = 5;
        Nf4Tensor t = Nf4Tensor.quantize(randn(rows * cols, 2), rows, cols, block, 3);
        float[] expected = new float[rows * cols];
        for (int e = 0; e < expected.length; e++) {
            expected[e] = Nf4.element(t.packedCodes(), t.blockScales(), block, e);
        }
        assertArrayEquals(expected, t.dequantize());
        for (int e0 = 0; e0 < expected.length; e0++) {
            for (int end = e0; end <= expected.length; end++) {
                float[] dst = new float[end - e0 + 1];
                dst[dst.length - 1] = 42f;
                t.decode(e0, end - e0, dst, 0);
                for (int e = e0; e < end; e++) {
                    assertEquals(expected[e], dst[e - e0], "[" + e0 + ", " + end + ") element " + e);
                }
                assertEquals(42f, dst[dst.length - 1], "decode wrote past its range");
            }
        }
        float[] row = new float[2 * cols];
        t.decodeRows(3, 2, row);
        assertArrayEquals(java.util.Arrays.copyOfRange(expected, 3 * cols, 5 * cols), row);
    }

    @Test
    void codesPackTheEvenElementInTheHighNibble() {
        float[] w = new float[64];
        w[0] = -1f;  // code 0
        w[1] = 1f;   // code 15
        w[2] = 0.5626170039176941f;  // code 13
        Nf4Tensor t = Nf4Tensor.quantize(w, 1, 64, 64, 1);
        assertEquals((byte) 0x0F, t.packedCodes()[0]);
        assertEquals((byte) 0xD7, t.packedCodes()[1]);  // 13, then 0.0 = code 7
    }

    /** All scalers equal: A = 0 and qf = +∞ (torch's 0·∞ = NaN cast to int8); q = 0 decodes the exact scaler μ. */
    @Test
    void equalScalersDecodeToTheirExactValue() {
        float[] w = new float[256];
        for (int i = 0; i < w.length; i++) {
            w[i] = (i % 3 == 0 ? -0.75f : 0.75f) * (i % 64 == 5 ? 1f : 0.5f);
        }
        Nf4Tensor t = Nf4Tensor.quantize(w, 4, 64, 64, 4);
        assertEquals(Float.POSITIVE_INFINITY, t.quantizationFactor()[0]);
        assertArrayEquals(new byte[4], t.quantizedScalers());
        assertArrayEquals(new float[] {0.75f, 0.75f, 0.75f, 0.75f}, t.blockScales());
        assertEquals(0.75f, t.dequantize()[5]);
        assertEquals(-0.75f, t.dequantize()[69]);
    }

    @Test
    void allZeroWeightDecodesToZeros() {
        Nf4Tensor t = Nf4Tensor.quantize(new float[512], 8, 64, 64, 8);
        for (float v : t.dequantize()) {
            assertEquals(0f, v, 0f);
        }
    }

    @Test
    void bf16ExportIsTheRoundedFp32Dequantization() {
        Nf4Tensor t = Nf4Tensor.quantize(randn(64 * 256, 3), 64, 256);
        float[] fp32 = t.dequantize();
        short[] bf16 = t.dequantizeBf16();
        assertEquals(fp32.length, bf16.length);
        for (int i = 0; i < fp32.length; i++) {
            float back = BFloat16.toFloat(bf16[i]);
            // nearest bf16: within half a bf16 ulp (2^-8 relative), and exact when fp32 has ≤ 8 significant bits
            assertTrue(Math.abs(back - fp32[i]) <= Math.ulp(back) * 65536 / 2, "element " + i);
            assertEquals(BFloat16.fromFloat(fp32[i]), bf16[i], "element " + i);
        }
        assertEquals((short) 0x3F80, BFloat16.fromFloat(1f));
        assertEquals((short) 0x3F80, BFloat16.fromFloat(Float.intBitsToFloat(0x3F808000)));  // tie to even: down
        assertEquals((short) 0x3F82, BFloat16.fromFloat(Float.intBitsToFloat(0x3F818000)));  // tie to even: up
    }
}
