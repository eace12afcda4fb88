package dev.tornadolora.nn;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoRALinearTest {

    static Tensor randn(long seed, int... shape) {
        Tensor t = Tensor.zeros(shape);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < t.numel(); i++) t.data()[i] = (float) (r.nextDouble() * 2 - 1);
        return t;
    }

    /** x·Wᵀ + b, written out independently of the kernels. */
    static float[] baseOnly(LoRALinear l, Tensor x) {
        Map<String, Tensor> sd = l.stateDict();
        float[] w = sd.get("weight").data();
        float[] b = sd.containsKey("bias") ? sd.get("bias").data() : null;
        int in = l.inDim(), out = l.outDim(), t = x.numel() / in;
        float[] y = new float[t * out];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < out; j++) {
                double acc = b == null ? 0 : b[j];
                for (int k = 0; k < in; k++) acc += (double) x.data()[i * in + k] * w[j * in + k];
                y[i * out + j] = (float) acc;
            }
        return y;
    }

    @Test
    void initialisationFollowsTorchtune() {
        int in = 512, out = 384;
        LoRALinear l = LoRALinear.builder(in, out).rank(64).alpha(16).bias(true).seed(3).build();
        Map<String, Tensor> sd = l.stateDict();
        double bound = 1 / Math.sqrt(in);
        for (String name : List.of("weight", "bias", "lora_a.weight")) {
            float[] v = sd.get(name).data();
            double mean = 0, var = 0, max = 0;
            for (float f : v) {
                mean += f;
                max = Math.max(max, Math.abs(f));
            }
            mean /= v.length;
            for (float f : v) var += (f - mean) * (f - mean);
            var /= v.length;
            assertTrue(max <= bound, name + " exceeds U(±1/√in): " + max);
            // U(-b, b): mean 0, variance b²/3; tolerances are several standard errors of the estimates.
            assertEquals(0, mean, 6 * bound / Math.sqrt(3 * v.length), name + " mean");
            assertEquals(bound * bound / 3, var, 0.06 * bound * bound / 3 * Math.max(1, Math.sqrt(16384.0 / v.length)), name + " variance");
        }
        for (float f : sd.get("lora_b.weight").data()) assertEquals(0f, f);
        assertEquals(List.of(64, 512), List.of(sd.get("lora_a.weight").dim(0), sd.get("lora_a.weight").dim(1)));
        assertEquals(List.of(384, 64), List.of(sd.get("lora_b.weight").dim(0), sd.get("lora_b.weight").dim(1)));
    }

    @Test
    void freshLayerEqualsItsBaseAndSeedsReproduce() {
        LoRALinear l = LoRALinear.builder(48, 40).rank(4).bias(true).seed(11).build().eval();
        Tensor x = randn(1, 3, 48);
        assertArrayEquals(baseOnly(l, x), l.forward(x).data(), 1e-5f);
        LoRALinear same = LoRALinear.builder(48, 40).rank(4).bias(true).seed(11).build();
        LoRALinear other = LoRALinear.builder(48, 40).rank(4).bias(true).seed(12).build();
        assertEquals(l.stateDict(), same.stateDict());
        assertFalse(l.stateDict().get("weight").equals(other.stateDict().get("weight")));
    }

    @Test
    void quantizationArgumentsWithoutQuantizeBaseRaiseLikeTorchtune() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new LoRALinear(64, 64, 8, 16, 0, false, false, Map.of("block_size", 64)));
        assertEquals("quantize_base is False, but received the following quantization arguments: {block_size=64}",
                e.getMessage());
        // falsy values are ignored, as torchtune's any([v for v in kwargs.values()])
        new LoRALinear(64, 64, 8, 16, 0, false, false, Map.of("block_size", 0));
        var unknown = assertThrows(IllegalArgumentException.class,
                () -> new LoRALinear(64, 64, 8, 16, 0, false, true, Map.of("blocksize", 64)));
        assertEquals("unknown quantization argument 'blocksize'; expected one of [block_size, scaler_block_size]",
                unknown.getMessage());
    }

    @Test
    void invalidHyperparametersAreRejected() {
        assertMessage("rank must be positive, got 0", () -> new LoRALinear(8, 8, 0, 1));
        assertMessage("rank must be positive, got -2", () -> new LoRALinear(8, 8, -2, 1));
        assertMessage("in_dim and out_dim must be positive, got in_dim=0, out_dim=8", () -> new LoRALinear(0, 8, 1, 1));
        assertMessage("in_dim and out_dim must be positive, got in_dim=8, out_dim=-1", () -> new LoRALinear(8, -1, 1, 1));
        assertMessage("dropout must be in [0, 1), got 1.0", () -> new LoRALinear(8, 8, 1, 1, 1f, false, false, Map.of()));
        assertMessage("dropout must be in [0, 1), got -0.1", () -> new LoRALinear(8, 8, 1, 1, -0.1f, false, false, Map.of()));
        assertMessage("dropout must be in [0, 1), got NaN", () -> new LoRALinear(8, 8, 1, 1, Float.NaN, false, false, Map.of()));
        assertMessage("alpha must be finite, got NaN", () -> new LoRALinear(8, 8, 1, Float.NaN));
        assertMessage("alpha must be finite, got Infinity", () -> new LoRALinear(8, 8, 1, Float.POSITIVE_INFINITY));
    }

    @Test
    void shapeMismatchesNameExpectedAndActual() {
        LoRALinear l = LoRALinear.builder(64, 32).rank(4).build();
        assertMessage("x: expected shape [..., 64] but got [2, 3, 32]", () -> l.forward(Tensor.zeros(2, 3, 32)));
        assertMessage("x: expected shape [..., 64] but got []", () -> l.forward(Tensor.zeros()));
        l.forward(Tensor.zeros(2, 3, 64));
        assertMessage("dy: expected shape [2, 3, 32] but got [2, 3, 31]", () -> l.backward(Tensor.zeros(2, 3, 31)));
        assertMessage("dy: expected shape [2, 3, 32] but got [6, 32]", () -> l.backward(Tensor.zeros(6, 32)));
        assertMessage("lora_a.weight: expected shape [4, 64] but got [4, 65]", () -> l.load("lora_a.weight", Tensor.zeros(4, 65)));
        assertMessage("lora_b.weight: expected shape [32, 4] but got [4, 32]", () -> l.load("lora_b.weight", Tensor.zeros(4, 32)));
        assertMessage("weight: expected shape [32, 64] but got [64, 32]", () -> l.load("weight", Tensor.zeros(64, 32)));
        assertMessage("bias: this layer was built without bias (use_bias=false)", () -> l.load("bias", Tensor.zeros(32)));
        assertMessage("unknown parameter 'lora_c.weight'; expected one of weight, bias, lora_a.weight, lora_b.weight",
                () -> l.load("lora_c.weight", Tensor.zeros(1)));
        var fresh = LoRALinear.builder(4, 4).rank(1).build();
        var e = assertThrows(IllegalStateException.class, () -> fresh.backward(Tensor.zeros(1, 4)));
        assertEquals("backward called before forward on this thread (a layer keeps each thread's last forward for that thread's backward)", e.getMessage());
    }

    @Test
    void disabledReturnsTheBaseOutputAndNoAdapterGradient() {
        LoRALinear l = LoRALinear.builder(40, 24).rank(8).alpha(4).bias(true).dropout(0.3f).seed(5).build();
        l.load("lora_b.weight", randn(2, 24, 8));
        Tensor x = randn(3, 5, 40);
        l.setDisabled(true);
        Tensor y = l.forward(x);
        assertArrayEquals(baseOnly(l, x), y.data(), 1e-5f);
        assertNull(l.lastDropoutMultiplier(), "no dropout when disabled");
        Tensor dy = randn(4, 5, 24);
        Tensor dx = l.backward(dy);
        float[] w = l.stateDict().get("weight").data();
        for (int t = 0; t < 5; t++)
            for (int i = 0; i < 40; i++) {
                double acc = 0;
                for (int j = 0; j < 24; j++) acc += (double) dy.data()[t * 24 + j] * w[j * 40 + i];
                assertEquals(acc, dx.data()[t * 40 + i], 1e-5);
            }
        for (Tensor g : l.adapterGradients().values()) for (float f : g.data()) assertEquals(0f, f);
        l.setDisabled(false);
        l.eval();
        assertFalse(java.util.Arrays.equals(baseOnly(l, x), l.forward(x).data()), "enabled adapters change y");
    }

    @Test
    void adapterParamsNameTheTrainableParameters() {
        LoRALinear l = LoRALinear.builder(8, 8).rank(2).bias(true).build();
        assertEquals(List.of("lora_a.weight", "lora_b.weight"), l.adapterParams());
        assertEquals(List.of("weight", "bias", "lora_a.weight", "lora_b.weight"), List.copyOf(l.stateDict().keySet()));
        assertEquals(l.adapterParams(), List.copyOf(l.adapterStateDict().keySet()));
    }

    @Test
    void toEmptyGivesAdaptersNewStorageAndLeavesTheBase() {
        LoRALinear l = LoRALinear.builder(16, 12).rank(4).bias(true).seed(9).build();
        l.load("lora_b.weight", randn(1, 12, 4));
        var base = l.base();
        float[] a = l.loraA(), b = l.loraB();
        Map<String, Tensor> before = l.stateDict();
        l.toEmpty(TestDevices.jvm());
        assertSame(base, l.base(), "base untouched");
        assertEquals(before.get("weight"), l.stateDict().get("weight"));
        assertEquals(before.get("bias"), l.stateDict().get("bias"));
        assertNotSame(a, l.loraA());
        assertNotSame(b, l.loraB());
        l.initializeParameters();
        for (float f : l.loraB()) assertEquals(0f, f);
        double bound = 1 / Math.sqrt(16);
        boolean nonZero = false;
        for (float f : l.loraA()) {
            assertTrue(Math.abs(f) <= bound);
            nonZero |= f != 0;
        }
        assertTrue(nonZero, "lora_a re-initialised");
        assertSame(TestDevices.jvm().backend(), l.backend(), "on the device");
    }

    @Test
    void dropoutMasksAreReproducibleFromTheSeed() {
        float p = 0.25f;
        Tensor x = randn(7, 64, 128);
        LoRALinear l1 = LoRALinear.builder(128, 32).rank(4).dropout(p).seed(42).build();
        LoRALinear l2 = LoRALinear.builder(128, 32).rank(4).dropout(p).seed(42).build();
        LoRALinear l3 = LoRALinear.builder(128, 32).rank(4).dropout(p).seed(43).build();
        l1.forward(x);
        l2.forward(x);
        l3.forward(x);
        float[] m1 = l1.lastDropoutMultiplier(), m2 = l2.lastDropoutMultiplier(), m3 = l3.lastDropoutMultiplier();
        assertArrayEquals(m1, m2);
        assertFalse(java.util.Arrays.equals(m1, m3));
        l1.forward(x);
        assertFalse(java.util.Arrays.equals(m1, l1.lastDropoutMultiplier()), "a new mask per forward");
        int dropped = 0;
        for (float f : m1) {
            assertTrue(f == 0f || f == 1f / (1f - p), "inverted dropout multiplier " + f);
            if (f == 0f) dropped++;
        }
        assertEquals(p, dropped / (double) m1.length, 0.02);
        l1.eval();
        l1.forward(x);
        assertNull(l1.lastDropoutMultiplier(), "no dropout in eval mode");
    }

    @Test
    void dropoutActsOnTheLoraBranchOnly() {
        LoRALinear l = LoRALinear.builder(32, 16).rank(2).dropout(0.5f).seed(1).build();
        Tensor x = randn(8, 4, 32);
        // With B = 0 the LoRA branch is zero, so training-mode output is the base output: dropout left x alone.
        assertArrayEquals(baseOnly(l, x), l.forward(x).data(), 1e-5f);
        l.load("lora_b.weight", randn(9, 16, 2));
        Tensor y = l.forward(x);
        float[] m = l.lastDropoutMultiplier();
        assertArrayEquals(l.forward(x, m).data(), y.data(), 0f);
    }

    @Test
    void rsloraIsAScaleRuleAndAlphaStaysTheUsers() {
        LoRALinear l = LoRALinear.builder(8, 6).rank(4).alpha(8f).rslora(true).build();
        assertEquals(8f, l.alpha());
        assertEquals(4f, l.scale(), 0f);  // 8 / sqrt(4)
        assertEquals(2f, LoRALinear.builder(8, 6).rank(4).alpha(8f).build().scale(), 0f);
    }

    /** x·W'ᵀ + b with W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖ per row, in double from the state dict. */
    static float[] doraReference(LoRALinear l, Tensor x) {
        Map<String, Tensor> sd = l.stateDict();
        float[] w = sd.get("weight").data(), a = sd.get("lora_a.weight").data(), b = sd.get("lora_b.weight").data();
        float[] m = sd.get("magnitude").data(), bias = sd.containsKey("bias") ? sd.get("bias").data() : null;
        int in = l.inDim(), out = l.outDim(), r = l.rank(), t = x.numel() / in;
        double[] wp = new double[out * in];
        for (int o = 0; o < out; o++) {
            double sq = 0;
            for (int j = 0; j < in; j++) {
                double v = w[o * in + j];
                for (int k = 0; k < r; k++) v += l.scale() * (double) b[o * r + k] * a[k * in + j];
                wp[o * in + j] = v;
                sq += v * v;
            }
            for (int j = 0; j < in; j++) wp[o * in + j] *= m[o] / Math.sqrt(sq);
        }
        float[] y = new float[t * out];
        for (int i = 0; i < t; i++)
            for (int o = 0; o < out; o++) {
                double acc = bias == null ? 0 : bias[o];
                for (int j = 0; j < in; j++) acc += x.data()[i * in + j] * wp[o * in + j];
                y[i * out + o] = (float) acc;
            }
        return y;
    }

    @Test
    void doraStartsAsItsBaseThenComputesTheRescaledWeightAndMergesToIt() {
        for (boolean nf4 : new boolean[] {false, true}) {
            LoRALinear l = LoRALinear.builder(64, 256).rank(2).alpha(4f).bias(true).dora(true).quantizeBase(nf4)
                    .seed(3).build();
            assertTrue(l.dora());
            assertEquals(List.of("lora_a.weight", "lora_b.weight", "magnitude"), l.adapterParams());
            Tensor x = randn(5, 3, 64);
            // m starts as the row norms of W (B = 0): the layer equals its base.
            assertArrayEquals(baseOnly(l, x), l.forward(x).data(), 1e-5f);
            l.load("lora_b.weight", randn(6, 256, 2));
            Tensor m = randn(7, 256);
            for (int i = 0; i < m.numel(); i++) m.data()[i] = 1 + m.data()[i];
            l.load("magnitude", m);
            float[] expected = doraReference(l, x);
            assertArrayEquals(expected, l.forward(x).data(), 1e-5f);
            // the merged weight computes the same
            float[] w = l.mergedWeight(), b = l.bias(), y = new float[3 * 256];
            for (int i = 0; i < 3; i++)
                for (int o = 0; o < 256; o++) {
                    double acc = b[o];
                    for (int j = 0; j < 64; j++) acc += x.data()[i * 64 + j] * w[o * 64 + j];
                    y[i * 256 + o] = (float) acc;
                }
            assertArrayEquals(expected, y, 1e-5f);
        }
    }

    /**
     * PEFT's DoRA forward with dropout, in double: y = x·Wᵀ + b + (m/c − 1)·x_d·Wᵀ + (m/c)·s·x_d·Aᵀ·Bᵀ, x_d = x ⊙ mask,
     * with the norm c given (detached, so finite differences of this function are the gradients PEFT computes).
     */
    static double doraDropoutLoss(double[] x, float[] mask, float[] w, float[] bias, double[] a, double[] b, double[] m,
                                  double[] c, double s, float[] r, int t, int in, int out, int rank) {
        double loss = 0;
        for (int i = 0; i < t; i++) {
            for (int o = 0; o < out; o++) {
                double base = bias[o], based = 0, lora = 0;
                for (int j = 0; j < in; j++) {
                    double xd = x[i * in + j] * mask[i * in + j];
                    base += x[i * in + j] * w[o * in + j];
                    based += xd * w[o * in + j];
                    double ba = 0;
                    for (int k = 0; k < rank; k++) ba += b[o * rank + k] * a[k * in + j];
                    lora += xd * ba;
                }
                double g = m[o] / c[o];
                loss += r[i * out + o] * (base + (g - 1) * based + g * s * lora);
            }
        }
        return loss;
    }

    static double[] d(float[] f) {
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) out[i] = f[i];
        return out;
    }

    /** DoRA with dropout in training is PEFT's formula; every gradient (x, A, B, m) by finite differences of it. */
    @Test
    void doraWithDropoutIsPeftsFormulaForwardAndBackward() {
        int in = 8, out = 6, rank = 2, t = 3;
        LoRALinear l = LoRALinear.builder(in, out).rank(rank).alpha(3f).dropout(0.3f).bias(true).dora(true).seed(4).build();
        l.load("lora_b.weight", randn(8, out, rank));
        Tensor mag = randn(9, out);
        for (int i = 0; i < out; i++) mag.data()[i] += 2;
        l.load("magnitude", mag);
        Tensor x = randn(10, t, in);
        float[] mask = new float[t * in];
        for (int i = 0; i < mask.length; i++) mask[i] = i % 3 == 0 ? 0f : 1f / 0.7f;
        float[] r = randn(11, t, out).data();
        Map<String, Tensor> sd = l.stateDict();
        float[] w = sd.get("weight").data(), bias = sd.get("bias").data();
        double[] a = d(sd.get("lora_a.weight").data()), b = d(sd.get("lora_b.weight").data()), m = d(mag.data());
        double[] c = new double[out];
        for (int o = 0; o < out; o++) {
            double sq = 0;
            for (int j = 0; j < in; j++) {
                double v = w[o * in + j];
                for (int k = 0; k < rank; k++) v += l.scale() * b[o * rank + k] * a[k * in + j];
                sq += v * v;
            }
            c[o] = Math.sqrt(sq);
        }
        double[] xs = d(x.data());
        float[] y = l.forward(x, mask).data();
        double loss = 0;
        for (int i = 0; i < y.length; i++) loss += (double) y[i] * r[i];
        assertEquals(doraDropoutLoss(xs, mask, w, bias, a, b, m, c, l.scale(), r, t, in, out, rank), loss, 1e-5);
        l.zeroGrad();
        float[] dx = l.backward(new Tensor(new int[] {t, out}, r)).data();
        Map<String, Tensor> g = l.adapterGradients();
        double[][] params = {xs, a, b, m};
        float[][] grads = {dx, g.get("lora_a.weight").data(), g.get("lora_b.weight").data(), g.get("magnitude").data()};
        String[] names = {"x", "lora_a.weight", "lora_b.weight", "magnitude"};
        for (int p = 0; p < params.length; p++) {
            for (int i = 0; i < params[p].length; i++) {
                double keep = params[p][i], h = 1e-4;
                params[p][i] = keep + h;
                double up = doraDropoutLoss(xs, mask, w, bias, a, b, m, c, l.scale(), r, t, in, out, rank);
                params[p][i] = keep - h;
                double down = doraDropoutLoss(xs, mask, w, bias, a, b, m, c, l.scale(), r, t, in, out, rank);
                params[p][i] = keep;
                assertEquals((up - down) / (2 * h), grads[p][i], 1e-4, names[p] + "[" + i + "]");
            }
        }
    }

    static void assertMessage(String expected, org.junit.jupiter.api.function.Executable ex) {
        var e = assertThrows(IllegalArgumentException.class, ex);
        assertEquals(expected, e.getMessage());
    }
}
