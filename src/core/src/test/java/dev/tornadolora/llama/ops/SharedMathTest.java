package dev.tornadolora.llama.ops;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.math.Silu;
import dev.tornadolora.math.Softmax;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.train.Losses;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Llama ops' fast paths against the one source of their math ({@code dev.tornadolora.math}): SwiGLU and
 * {@code nn.Activation} are {@link Silu} bit for bit; the Vector API softmax loops give {@link Softmax#SCALAR}'s
 * max and exponentials bit for bit and its sum up to the order of summation; the causal-LM loss and
 * {@code Losses.crossEntropy} are one {@link CrossEntropy}.
 */
class SharedMathTest {
    private static final Parallel PAR = TestDevices.jvm().executor();
    /** fp32 unit roundoff. */
    private static final double U = 0x1p-24;

    @Test
    void swiGluAndActivationAreTheOneSiluBitForBit() {
        SplittableRandom rnd = new SplittableRandom(5);
        int n = 64 * VecSimd.L + 3;  // vector lanes and a scalar tail
        float[] g = random(rnd, n, 12), u = random(rnd, n, 3), da = random(rnd, n, 2);
        g[0] = 0f;
        g[1] = -100f;  // exp clamps
        g[2] = 100f;
        float[] a = new float[n], dg = new float[n], du = new float[n];
        SwiGlu.forward(PAR, g, u, a);
        SwiGlu.backward(PAR, da, g, u, dg, du);
        Activation silu = Activation.silu();
        float[] act = silu.forward(new Tensor(new int[] {n}, g)).data();
        for (int i = 0; i < n; i++) {
            assertBits(Silu.silu(g[i]) * u[i], a[i], "a", i);
            assertBits(Silu.backward(da[i] * u[i], g[i]), dg[i], "dg", i);
            assertBits(da[i] * Silu.silu(g[i]), du[i], "du", i);
            assertBits(Silu.silu(g[i]), act[i], "Activation.silu", i);
        }
        float[] dAct = silu.backward(new Tensor(new int[] {n}, da)).data();
        for (int i = 0; i < n; i++) assertBits(Silu.backward(da[i], g[i]), dAct[i], "Activation.silu backward", i);
    }

    /**
     * Max and every exponential bit for bit; the sum within 2(n − 1)·u·sum: any order of adding n positive fp32
     * terms is within (n − 1)·u·Σ of the exact sum (first order), so two orders are within twice that.
     */
    @Test
    void vectorSoftmaxLoopsAreTheDefinitionUpToTheOrderOfTheSum() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int n : new int[] {1, 2, VecSimd.L - 1, VecSimd.L, 3 * VecSimd.L + 1, 1000, 32000}) {
            float[] x = random(rnd, n, 20);
            float scale = 0.125f;
            float[] fast = x.clone(), slow = x.clone();
            float m = Softmax.SCALAR.max(n, x, 0);
            assertBits(m, VecSimd.ROWS.max(n, x, 0), "max of " + n, 0);
            float sumSlow = Softmax.SCALAR.expInPlace(n, slow, 0, scale, m * scale);
            float sumFast = VecSimd.ROWS.expInPlace(n, fast, 0, scale, m * scale);
            for (int i = 0; i < n; i++) assertBits(slow[i], fast[i], "exp of row length " + n, i);
            assertEquals(sumSlow, sumFast, 2 * (n - 1) * U * sumSlow, "sum of " + n);
            // the ops use the vector loops wherever the Vector API is readable
            assertTrue(!Vec.SIMD || Vec.ROWS == VecSimd.ROWS);
        }
    }

    /**
     * {@code CausalLmLoss} (vector loops, shifted labels) against {@code Losses.crossEntropy} (scalar loops) on the
     * same rows: the same {@link CrossEntropy}, so they differ only by the order of the softmax sums.
     */
    @Test
    void causalLmLossAndLossesCrossEntropyAreOneCrossEntropy() {
        SplittableRandom rnd = new SplittableRandom(9);
        int batch = 2, seq = 5, vocab = 3 * VecSimd.L + 5, rows = batch * seq;
        float[] logits = random(rnd, rows * vocab, 6);
        int[] labels = new int[rows], shifted = new int[rows];
        for (int t = 0; t < rows; t++) labels[t] = t % 4 == 2 ? CrossEntropy.IGNORE_INDEX : rnd.nextInt(vocab);
        for (int t = 0; t < rows; t++) shifted[t] = CausalLmLoss.target(labels, seq, t);
        float[] dz = new float[rows * vocab];
        double loss = CausalLmLoss.forward(PAR, logits, labels, batch, seq, vocab, dz, 1.0);
        Losses.Result ce = Losses.crossEntropy(new Tensor(new int[] {rows, vocab}, logits), shifted);
        double sumTol = 2 * (vocab - 1) * U;
        // a row's loss is lse − z_y; lse moves by at most the sum's relative error
        assertEquals(ce.value(), loss, sumTol + 4 * U * Math.abs(ce.value()) + 1e-12);
        float[] g = ce.grad().data();
        for (int i = 0; i < g.length; i++) {
            // e_i · (g / sum) (− g at the target): the sum's relative error, plus a rounding or two
            assertEquals(g[i], dz[i], (sumTol + 4 * U) * Math.abs(g[i]) + 1e-12, "gradient element " + i);
        }
        assertEquals(CausalLmLoss.forwardReference(toDouble(logits), labels, batch, seq, vocab), loss, 1e-5);
    }

    private static void assertBits(float expected, float actual, String what, int i) {
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                what + "[" + i + "]: expected " + expected + " but got " + actual);
    }

    private static float[] random(SplittableRandom rnd, int n, double range) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextDouble(-range, range);
        return x;
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i];
        return d;
    }
}
