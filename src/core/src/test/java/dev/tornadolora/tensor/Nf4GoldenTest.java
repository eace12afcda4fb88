package dev.tornadolora.tensor;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Java's NF4 against the independent PyTorch reference of scripts/golden.py (torchao's to_nf4 algorithm):
 * codes identical everywhere, int8 scalers identical on at least 99.9%, decoding of a stored record bit-exact.
 */
class Nf4GoldenTest {

    private static int scalersCompared;
    private static int scalersDiffering;
    private static int meansDiffering;

    static List<String> nf4Fixtures() {
        return Golden.files("nf4_").stream().map(p -> p.getFileName().toString()).toList();
    }

    static List<String> qloraFixtures() {
        return Golden.files("qlora_").stream().map(p -> p.getFileName().toString()).toList();
    }

    private static Nf4Tensor quantizeFixtureWeight(SafeTensors f) {
        Tensor w = f.f32("weight");
        return Nf4Tensor.quantize(w.data(), w.dim(0), w.dim(1), Integer.parseInt(f.requireMetadata("block_size")),
                Integer.parseInt(f.requireMetadata("scaler_block_size")));
    }

    private static Nf4Tensor storedRecord(SafeTensors f) {
        Tensor deq = f.f32("weight.dequantized");
        return Nf4Record.read(f, "weight", deq.dim(0), deq.dim(1));
    }

    @ParameterizedTest
    @MethodSource("nf4Fixtures")
    void codesAreIdenticalAndScalersAgree(String file) {
        SafeTensors f = Golden.open(file);
        Nf4Tensor java = quantizeFixtureWeight(f);
        Nf4Tensor torch = storedRecord(f);

        assertArrayEquals(torch.packedCodes(), java.packedCodes(), file + ": quantized_data");

        byte[] q = java.quantizedScalers(), qRef = torch.quantizedScalers();
        int differing = 0;
        for (int b = 0; b < q.length; b++) {
            if (q[b] != qRef[b]) differing++;
        }
        synchronized (Nf4GoldenTest.class) {
            scalersCompared += q.length;
            scalersDiffering += differing;
            if (java.scalerMean() != torch.scalerMean()) meansDiffering++;
        }
        assertTrue(differing <= q.length / 1000, file + ": " + differing + " of " + q.length + " int8 scalers differ");

        // μ: Java's is the correctly rounded mean, torch's a cascade of fp32 partial sums; at most an ulp apart.
        float mu = torch.scalerMean(), ulpMu = Math.ulp(mu);
        assertEquals(mu, java.scalerMean(), ulpMu, file + ": scaler_mean");
        // qf = 128 / A with A = max|s − μ|: an ulp of μ moves A by about an ulp of μ, a relative 2·ulp(μ)/A of qf
        // (large when the scalers cluster around μ: A is then a difference of nearby numbers).
        float[] qf = java.quantizationFactor(), qfRef = torch.quantizationFactor();
        for (int j = 0; j < qf.length; j++) {
            double a = 128.0 / qfRef[j];
            assertEquals(qfRef[j], qf[j], qfRef[j] * 2 * ulpMu / a + 2 * Math.ulp(qfRef[j]),
                    file + ": quantization_factor[" + j + "]");
        }
    }

    /** Decoding the stored record reproduces torch's dequantization bit for bit (all of it is one fp32 op chain). */
    @ParameterizedTest
    @MethodSource({"nf4Fixtures", "qloraFixtures"})
    void storedRecordDecodesExactly(String file) {
        SafeTensors f = Golden.open(file);
        assertArrayEquals(f.f32("weight.dequantized").data(), storedRecord(f).dequantize(), file);
    }

    /**
     * Java's own quantization decodes to torch's values: exactly where μ is the same. Else an ulp of μ moves the
     * block scale q/qf + μ by an ulp of μ directly and by up to |q|/128 · ulp(μ) ≤ ulp(μ) through qf, plus a few
     * roundings of the scale itself; codebook entries are at most 1 in magnitude.
     */
    @ParameterizedTest
    @MethodSource("nf4Fixtures")
    void javaQuantizationDecodesToTorchValues(String file) {
        SafeTensors f = Golden.open(file);
        Nf4Tensor java = quantizeFixtureWeight(f);
        Nf4Tensor torch = storedRecord(f);
        float[] expected = f.f32("weight.dequantized").data();
        float[] actual = java.dequantize();
        if (java.scalerMean() == torch.scalerMean()) {
            assertArrayEquals(expected, actual, file);
            return;
        }
        for (int e = 0; e < expected.length; e++) {
            float scale = torch.blockScales()[e / torch.blockSize()];
            assertEquals(expected[e], actual[e], 2 * Math.ulp(torch.scalerMean()) + 4 * Math.ulp(scale),
                    file + ": element " + e);
        }
    }

    @Test
    void zeroBlockDecodesToZeros() {
        SafeTensors f = Golden.open("nf4_zero_block_64x256.safetensors");
        Nf4Tensor java = quantizeFixtureWeight(f);
        float[] w = f.f32("weight").data();
        float[] deq = java.dequantize();
        int zeroBlocks = 0;
        for (int b = 0; b < java.numel() / java.blockSize(); b++) {
            boolean zero = true;
            for (int e = b * java.blockSize(); e < (b + 1) * java.blockSize(); e++) zero &= w[e] == 0f;
            if (!zero) continue;
            zeroBlocks++;
            for (int e = b * java.blockSize(); e < (b + 1) * java.blockSize(); e++) {
                assertEquals(Nf4.ZERO_CODE, java.code(e), "code of element " + e);
                assertEquals(0f, deq[e], 0f, "element " + e);
            }
        }
        assertEquals(1, zeroBlocks, "the fixture has one all-zero block");
    }

    @Test
    void roundHalfEvenScalerTiesMatch() {
        SafeTensors f = Golden.open("nf4_scaler_ties_64x256.safetensors");
        assertArrayEquals(storedRecord(f).quantizedScalers(), quantizeFixtureWeight(f).quantizedScalers());
    }

    @AfterAll
    static void report() {
        System.out.printf("NF4 fixtures: %d of %d int8 scalers differ from PyTorch; scaler_mean differs (1 ulp) in %d files%n",
                scalersDiffering, scalersCompared, meansDiffering);
    }
}
